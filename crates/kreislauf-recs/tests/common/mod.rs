//! Hand-made wine club world shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use kreislauf_recs::{
    Catalog, CatalogMeta, CatalogSet, HistoryEvent, Interaction, InteractionKind, Item, ItemKey,
    Language, PairingRules,
};

pub fn wine(
    id: &str,
    title: &str,
    kind: &str,
    grape: &str,
    region: &str,
    country: &str,
    price: f64,
) -> Item {
    Item::new(id, title)
        .with_price(price, "EUR")
        .with_category(match kind {
            "sparkling" => "Schaumwein",
            "white" => "Weißwein",
            "red" => "Rotwein",
            _ => "Wein",
        })
        .with_attribute("type", kind)
        .with_attribute("grape", grape)
        .with_attribute("region", region)
        .with_attribute("country", country)
        .with_url(format!("https://weinclub.example/{id}"))
}

pub fn recipe(
    id: &str,
    title: &str,
    description: &str,
    course: &str,
    cuisine: &str,
    diet: &str,
    main: Vec<&str>,
) -> Item {
    Item::new(id, title)
        .with_description(description)
        .with_category("Rezept")
        .with_attribute("course", course)
        .with_attribute("cuisine", cuisine)
        .with_attribute("diet", diet)
        .with_attribute("main_ingredients", main)
}

pub fn catalogs() -> CatalogSet {
    let mut wines = Catalog::new(
        CatalogMeta::new("wines", "weinclub", "product")
            .with_language(Language::German)
            .with_attributes(["type", "grape", "region", "country", "sweetness"]),
    );
    wines.upsert(
        wine(
            "prosecco",
            "Prosecco DOC Extra Dry",
            "sparkling",
            "Glera",
            "Venetien",
            "Italien",
            11.9,
        )
        .with_description("Frischer Schaumwein mit Apfel- und Birnennoten, ideal zum Aperitif")
        .with_attribute("sweetness", "extra dry"),
    );
    wines.upsert(
        wine(
            "franciacorta",
            "Franciacorta Brut",
            "sparkling",
            "Chardonnay",
            "Lombardei",
            "Italien",
            24.5,
        )
        .with_description("Feiner Schaumwein in traditioneller Flaschengärung mit Brioche-Noten")
        .with_attribute("sweetness", "brut"),
    );
    wines.upsert(
        wine(
            "cremant",
            "Crémant d'Alsace",
            "sparkling",
            "Pinot Blanc",
            "Elsass",
            "Frankreich",
            15.9,
        )
        .with_description("Schaumwein aus dem Elsass, frisch und cremig")
        .with_attribute("sweetness", "brut"),
    );
    wines.upsert(
        wine(
            "champagne",
            "Champagne Grand Cru",
            "sparkling",
            "Chardonnay",
            "Champagne",
            "Frankreich",
            79.0,
        )
        .with_description("Großer Schaumwein für besondere Anlässe"),
    );
    wines.upsert(
        wine(
            "riesling",
            "Riesling Kabinett Mosel",
            "white",
            "Riesling",
            "Mosel",
            "Deutschland",
            14.5,
        )
        .with_description("Mineralischer Weißwein mit feiner Säure")
        .with_attribute("sweetness", "feinherb"),
    );
    wines.upsert(
        wine(
            "barolo",
            "Barolo DOCG",
            "red",
            "Nebbiolo",
            "Piemont",
            "Italien",
            39.0,
        )
        .with_description("Kraftvoller Rotwein mit Tanninen, Kirsche und Rosen")
        .with_attribute("sweetness", "trocken"),
    );
    let mut recipes = Catalog::new(
        CatalogMeta::new("recipes", "weinclub", "recipe")
            .with_language(Language::German)
            .with_attributes(["course", "cuisine", "diet", "main_ingredients", "occasion"]),
    );
    recipes.upsert(recipe(
        "bruschetta",
        "Bruschetta mit Tomaten",
        "Geröstetes Brot mit Tomaten, Knoblauch und Basilikum – italienische Antipasti",
        "antipasti",
        "italienisch",
        "vegetarisch",
        vec!["tomate", "brot"],
    ));
    recipes.upsert(recipe(
        "vitello",
        "Vitello tonnato",
        "Kalbfleisch mit Thunfischsauce, klassische italienische Vorspeise",
        "antipasti",
        "italienisch",
        "fleisch",
        vec!["kalb", "thunfisch"],
    ));
    recipes.upsert(recipe(
        "spargelrisotto",
        "Spargelrisotto",
        "Cremiges Risotto mit grünem Spargel und Parmesan",
        "hauptgericht",
        "italienisch",
        "vegetarisch",
        vec!["spargel", "reis"],
    ));
    recipes.upsert(recipe(
        "pilzrisotto",
        "Risotto mit Pilzen",
        "Risotto mit Steinpilzen und Thymian",
        "hauptgericht",
        "italienisch",
        "vegetarisch",
        vec!["pilze", "reis"],
    ));
    recipes.upsert(recipe(
        "schmorbraten",
        "Rinderschmorbraten",
        "Langsam geschmortes Rindfleisch in Rotweinsauce mit Wurzelgemüse",
        "hauptgericht",
        "deutsch",
        "fleisch",
        vec!["rind"],
    ));
    recipes.upsert(recipe(
        "fondue",
        "Käsefondue",
        "Geschmolzener Käse mit Weißwein und Brot",
        "hauptgericht",
        "schweizerisch",
        "vegetarisch",
        vec!["käse", "brot"],
    ));
    recipes.upsert(
        recipe(
            "caprese",
            "Insalata Caprese",
            "Tomaten und Mozzarella mit Basilikum, italienische Antipasti",
            "antipasti",
            "italienisch",
            "vegetarisch",
            vec!["tomate", "mozzarella"],
        )
        .with_available(false),
    );
    let mut deli = Catalog::new(
        CatalogMeta::new("deli", "weinclub", "product").with_language(Language::German),
    );
    deli.upsert(
        Item::new("parmigiano", "Parmigiano Reggiano 24 Monate")
            .with_price(8.9, "EUR")
            .with_category("Käse")
            .with_attribute("milk", "kuh"),
    );
    deli.upsert(
        Item::new("olives", "Oliven aus Apulien")
            .with_price(4.5, "EUR")
            .with_category("Antipasti")
            .with_attribute("origin", "Italien"),
    );
    deli.upsert(
        Item::new("salami", "Salami Milano")
            .with_price(6.5, "EUR")
            .with_category("Wurst")
            .with_attribute("origin", "Italien"),
    );
    let mut set = CatalogSet::new();
    set.insert(wines);
    set.insert(recipes);
    set.insert(deli);
    set
}

pub const RULES_YAML: &str = r#"
version: 7
description: Weinclub pairing knowledge
rules:
  - id: sparkling-antipasti
    from: { catalog: wines, attribute: type, values: [sparkling] }
    to: { catalog: recipes, attribute: course, values: [antipasti] }
    weight: 0.9
    note: Prosecco opens the evening
  - id: sparkling-vegetarian
    from: { catalog: wines, attribute: type, value: sparkling }
    to: { catalog: recipes, attribute: diet, values: [vegetarisch] }
    weight: 0.5
  - id: italian-italian
    from: { catalog: wines, attribute: country, values: [Italien] }
    to: { catalog: recipes, attribute: cuisine, values: [italienisch] }
    weight: 0.6
  - id: red-beef
    from: { catalog: wines, attribute: type, values: [red] }
    to: { catalog: recipes, attribute: main_ingredients, values: [rind] }
    weight: 0.9
  - id: white-asparagus
    from: { catalog: wines, attribute: type, values: [white] }
    to: { catalog: recipes, attribute: main_ingredients, values: [spargel, käse] }
    weight: 0.8
  - id: red-not-fish
    from: { catalog: wines, attribute: type, values: [red] }
    to: { catalog: recipes, attribute: main_ingredients, values: [thunfisch] }
    weight: -0.7
"#;

pub fn rules() -> PairingRules {
    PairingRules::from_yaml_str(RULES_YAML).unwrap()
}

pub fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap() + Duration::days(n)
}

pub fn interaction(
    profile: &str,
    catalog: &str,
    id: &str,
    kind: InteractionKind,
    at: i64,
) -> Interaction {
    Interaction {
        profile: profile.to_string(),
        item: ItemKey::new(catalog, id),
        kind,
        timestamp: day(at),
    }
}

/// Twelve Prosecco buyers; most also take Parmigiano and click the
/// Bruschetta; Barolo buyers click the Schmorbraten.
pub fn interactions() -> Vec<Interaction> {
    let mut events = Vec::new();
    for profile in 0..12 {
        let name = format!("p{profile}");
        let at = 10 + profile;
        events.push(interaction(
            &name,
            "wines",
            "prosecco",
            InteractionKind::Purchase,
            at,
        ));
        if profile % 4 != 0 {
            events.push(interaction(
                &name,
                "deli",
                "parmigiano",
                InteractionKind::Purchase,
                at,
            ));
            events.push(interaction(
                &name,
                "recipes",
                "bruschetta",
                InteractionKind::Click,
                at + 1,
            ));
        }
    }
    for profile in 20..26 {
        let name = format!("p{profile}");
        events.push(interaction(
            &name,
            "wines",
            "barolo",
            InteractionKind::Purchase,
            30,
        ));
        events.push(interaction(
            &name,
            "recipes",
            "schmorbraten",
            InteractionKind::Click,
            32,
        ));
        events.push(interaction(
            &name,
            "deli",
            "salami",
            InteractionKind::Purchase,
            30,
        ));
    }
    events
}

pub fn history(items: &[(&str, &str, InteractionKind, i64)]) -> Vec<HistoryEvent> {
    items
        .iter()
        .map(|(catalog, id, kind, at)| HistoryEvent {
            item: ItemKey::new(*catalog, *id),
            kind: *kind,
            timestamp: day(*at),
        })
        .collect()
}
