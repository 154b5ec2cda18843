//! Catalog import: CSV and JSON parsers keep good lines and report bad ones
//! with line number and field.
#![allow(clippy::unwrap_used)]

use kreislauf_recs::import::write_items_csv;
use kreislauf_recs::{AttributeValue, Catalog, CatalogMeta, CsvItemReader, Item, JsonItemReader};
use proptest::prelude::*;

const CSV: &str = "\
id,title,url,image,price,currency,available,categories,attr.type,attr.main_ingredients
prosecco,Prosecco DOC,https://x/p,,11.90,EUR,true,Schaumwein|Italien,sparkling,
riesling,Riesling Kabinett,,,zwölf,EUR,true,Weißwein,white,
bruschetta,Bruschetta mit Tomaten,,,,,ja,Rezept,,tomate|brot
barolo,Barolo,,,\"39,00\",EUR,no,Rotwein,red,
,Ohne Id,,,,,,,,
kaese,\"Käse, \"\"würzig\"\"\",,,4.5,EUR,vielleicht,Käse,,
";

#[test]
fn csv_keeps_good_lines_and_reports_bad_ones() {
    let records: Vec<_> = CsvItemReader::new(CSV.as_bytes()).collect();
    assert_eq!(records.len(), 6);
    let errors: Vec<_> = records
        .iter()
        .filter_map(|record| record.as_ref().err())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].field.as_str()), (3, "price"));
    assert!(errors[0].message.contains("zwölf"), "{}", errors[0]);
    assert_eq!(
        errors[0].to_string(),
        "line 3: field \"price\": invalid number \"zwölf\""
    );
    assert_eq!((errors[1].line, errors[1].field.as_str()), (6, "id"));
    assert_eq!((errors[2].line, errors[2].field.as_str()), (7, "available"));

    let mut catalog = Catalog::new(CatalogMeta::new("wines", "weinclub", "product"));
    let summary = catalog.import(CsvItemReader::new(CSV.as_bytes()));
    assert_eq!(
        (summary.inserted, summary.updated, summary.errors.len()),
        (3, 0, 3)
    );
    let prosecco = catalog.get("prosecco").unwrap();
    assert_eq!(prosecco.price, Some(11.9));
    assert_eq!(prosecco.categories, vec!["Schaumwein", "Italien"]);
    assert_eq!(prosecco.url.as_deref(), Some("https://x/p"));
    assert_eq!(
        prosecco.attributes.get("type"),
        Some(&AttributeValue::Text("sparkling".into()))
    );
    let bruschetta = catalog.get("bruschetta").unwrap();
    assert!(bruschetta.available);
    assert_eq!(
        bruschetta.attributes.get("main_ingredients"),
        Some(&AttributeValue::List(vec!["tomate".into(), "brot".into()]))
    );
    let barolo = catalog.get("barolo").unwrap();
    assert_eq!(barolo.price, Some(39.0));
    assert!(!barolo.available);
    // Re-import counts as update.
    let summary = catalog.import(CsvItemReader::new(CSV.as_bytes()));
    assert_eq!((summary.inserted, summary.updated), (0, 3));
}

#[test]
fn csv_structural_errors_name_line_and_header_problems() {
    let ragged = "id,title,price\na,A,1\nb,B\nc,C,3\n";
    let records: Vec<_> = CsvItemReader::new(ragged.as_bytes()).collect();
    assert_eq!(records.len(), 3);
    let error = records[1].as_ref().unwrap_err();
    assert_eq!((error.line, error.field.as_str()), (3, "record"));
    assert!(
        error.message.contains("expected 3 fields, found 2"),
        "{error}"
    );
    assert_eq!(records[2].as_ref().unwrap().id, "c");

    let typo = "id,title,prize\na,A,1\n";
    let records: Vec<_> = CsvItemReader::new(typo.as_bytes()).collect();
    assert_eq!(records.len(), 1);
    let error = records[0].as_ref().unwrap_err();
    assert_eq!((error.line, error.field.as_str()), (1, "prize"));
    let missing = "id,price\na,1\n";
    let error = CsvItemReader::new(missing.as_bytes())
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(error.field, "title");
}

const JSON_LINES: &str = r#"{"id": "prosecco", "title": "Prosecco DOC", "price": 11.9, "categories": ["Schaumwein"], "attributes": {"type": "sparkling", "vintage": 2023}}

{"id": "riesling", "title": "Riesling", "price": "teuer"}
{"id": "barolo", "title": "Barolo", "available": false, "attributes": {"grapes": ["Nebbiolo"]}}
{"id": "broken", "title": 
{"id": "fondue", "titel": "Käsefondue"}
{"id": 17, "title": "Numeric id", "price": "12,50"}
"#;

#[test]
fn json_lines_keep_good_lines_and_report_bad_ones() {
    let records: Vec<_> = JsonItemReader::new(JSON_LINES.as_bytes()).collect();
    assert_eq!(records.len(), 6);
    let good: Vec<&Item> = records
        .iter()
        .filter_map(|record| record.as_ref().ok())
        .collect();
    assert_eq!(
        good.iter().map(|item| item.id.as_str()).collect::<Vec<_>>(),
        vec!["prosecco", "barolo", "17"]
    );
    assert_eq!(
        good[0].attributes.get("vintage"),
        Some(&AttributeValue::Number(2023.0))
    );
    assert!(!good[1].available);
    assert_eq!(good[2].price, Some(12.5));
    let errors: Vec<_> = records
        .iter()
        .filter_map(|record| record.as_ref().err())
        .collect();
    assert_eq!((errors[0].line, errors[0].field.as_str()), (3, "price"));
    assert_eq!((errors[1].line, errors[1].field.as_str()), (5, "record"));
    assert_eq!((errors[2].line, errors[2].field.as_str()), (6, "titel"));
}

#[test]
fn json_array_elements_carry_their_line() {
    let array = r#"[
  {"id": "a", "title": "A"},
  {"id": "b", "title": "B", "price": -3},
  {"id": "c", "title": "C with ] and , inside \" quotes",
   "attributes": {"x": [1, 2]}},
  {"id": "d", "title": "D", "attributes": {"nested": {"no": 1}}}
]"#;
    let records: Vec<_> = JsonItemReader::new(array.as_bytes()).collect();
    assert_eq!(records.len(), 4, "{records:?}");
    assert_eq!(records[0].as_ref().unwrap().id, "a");
    let error = records[1].as_ref().unwrap_err();
    assert_eq!((error.line, error.field.as_str()), (3, "price"));
    let third = records[2].as_ref().unwrap();
    assert_eq!(third.title, "C with ] and , inside \" quotes");
    assert_eq!(
        third.attributes.get("x"),
        Some(&AttributeValue::List(vec!["1".into(), "2".into()]))
    );
    let error = records[3].as_ref().unwrap_err();
    assert_eq!((error.line, error.field.as_str()), (6, "attributes.nested"));

    let truncated = r#"[{"id": "a", "title": "A"}, {"id": "b""#;
    let records: Vec<_> = JsonItemReader::new(truncated.as_bytes()).collect();
    assert_eq!(records.len(), 2);
    assert!(records[1]
        .as_ref()
        .unwrap_err()
        .message
        .contains("unexpected end"));
    assert_eq!(JsonItemReader::new("  ".as_bytes()).count(), 0);
    assert_eq!(JsonItemReader::new("[]".as_bytes()).count(), 0);
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß0-9 ,\"'-]{0,12}"
        .prop_map(|text| text.trim().to_string())
        .prop_filter("non-empty", |text| !text.is_empty() && !text.contains('|'))
}

fn item() -> impl Strategy<Value = Item> {
    (
        "[a-z0-9]{1,8}",
        word(),
        proptest::option::of(0u32..100_000),
        any::<bool>(),
        proptest::collection::vec(word(), 0..3),
        proptest::option::of(word()),
        proptest::collection::vec(word(), 2..4),
    )
        .prop_map(
            |(id, title, cents, available, categories, grape, ingredients)| {
                let mut item = Item::new(id, title).with_available(available);
                item.price = cents.map(|cents| f64::from(cents) / 100.0);
                item.categories = categories;
                if let Some(grape) = grape {
                    item = item.with_attribute("grape", grape);
                }
                item.with_attribute("main_ingredients", ingredients)
            },
        )
}

proptest! {
    #[test]
    fn csv_round_trips(items in proptest::collection::vec(item(), 1..6)) {
        let mut buffer = Vec::new();
        write_items_csv(&mut buffer, &items).unwrap();
        let parsed: Vec<Item> = CsvItemReader::new(buffer.as_slice()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parsed, items);
    }

    #[test]
    fn json_lines_and_array_round_trip(items in proptest::collection::vec(item(), 1..6)) {
        let lines: String = items.iter().map(|item| serde_json::to_string(item).unwrap() + "\n").collect();
        let parsed: Vec<Item> = JsonItemReader::new(lines.as_bytes()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&parsed, &items);
        let array = serde_json::to_string_pretty(&items).unwrap();
        let parsed: Vec<Item> = JsonItemReader::new(array.as_bytes()).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(parsed, items);
    }

    #[test]
    fn parsers_never_panic_on_garbage(input in ".{0,200}") {
        let _ = CsvItemReader::new(input.as_bytes()).count();
        let _ = JsonItemReader::new(input.as_bytes()).count();
    }
}
