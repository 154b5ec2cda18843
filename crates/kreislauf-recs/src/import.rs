//! Streaming catalog parsers over any [`Read`].
//!
//! Both parsers are iterators of `Result<Item, ImportError>`: a bad record
//! yields an error with its line number and the offending field, and
//! parsing continues with the next record, so good lines are kept.
//!
//! * CSV ([`CsvItemReader`]): header row with the columns `id`, `title`,
//!   `description`, `url`, `image`, `price`, `currency`, `available`,
//!   `categories` (`|`-separated) and `attr.<name>` columns. An attribute
//!   cell containing `|` becomes a list value. Unknown columns are rejected
//!   at the header so that typos (`prize`) don't silently drop data.
//! * JSON ([`JsonItemReader`]): either JSON Lines (one object per line) or
//!   one JSON array of objects; detected from the first non-blank byte. The
//!   array form is split into elements by a small scanner, so huge arrays
//!   are never held in memory as one value.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

use crate::catalog::{AttributeValue, Item};
use crate::error::ImportError;

const KNOWN_COLUMNS: [&str; 9] = [
    "id",
    "title",
    "description",
    "url",
    "image",
    "price",
    "currency",
    "available",
    "categories",
];

/// Splits a `|`-separated cell into trimmed, non-empty parts.
fn split_list(cell: &str) -> Vec<String> {
    cell.split('|')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_price(line: u64, raw: &str) -> Result<Option<f64>, ImportError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    // Accept a German decimal comma when there is no dot ("12,99").
    let normalised = if trimmed.contains(',') && !trimmed.contains('.') {
        trimmed.replace(',', ".")
    } else {
        trimmed.to_string()
    };
    match normalised.parse::<f64>() {
        Ok(price) if price.is_finite() && price >= 0.0 => Ok(Some(price)),
        Ok(_) => Err(ImportError::new(
            line,
            "price",
            format!("price must be a non-negative number, got \"{raw}\""),
        )),
        Err(_) => Err(ImportError::new(
            line,
            "price",
            format!("invalid number \"{raw}\""),
        )),
    }
}

fn parse_available(line: u64, raw: &str) -> Result<bool, ImportError> {
    match raw.trim().to_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "y" | "ja" | "x" | "in_stock" => Ok(true),
        "false" | "0" | "no" | "n" | "nein" | "out_of_stock" => Ok(false),
        _ => Err(ImportError::new(
            line,
            "available",
            format!("expected true/false, got \"{raw}\""),
        )),
    }
}

fn non_empty(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Column role resolved from the CSV header.
#[derive(Clone, Debug)]
enum Column {
    Known(&'static str),
    Attribute(String),
}

/// Streaming CSV catalog parser (see module docs for the format).
pub struct CsvItemReader<R: Read> {
    reader: csv::Reader<R>,
    columns: Vec<Column>,
    record: csv::StringRecord,
    header_error: Option<ImportError>,
    done: bool,
}

impl<R: Read> CsvItemReader<R> {
    /// Reads the header. A header problem (missing `id`/`title`, unknown
    /// column) is yielded as the first and only error of the iterator.
    pub fn new(input: R) -> Self {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::Headers)
            .from_reader(input);
        let (columns, header_error) = match reader.headers() {
            Ok(headers) => match Self::resolve_columns(headers) {
                Ok(columns) => (columns, None),
                Err(error) => (Vec::new(), Some(error)),
            },
            Err(error) => (Vec::new(), Some(csv_error(error, 1))),
        };
        Self {
            reader,
            columns,
            record: csv::StringRecord::new(),
            header_error,
            done: false,
        }
    }

    fn resolve_columns(headers: &csv::StringRecord) -> Result<Vec<Column>, ImportError> {
        let mut columns = Vec::with_capacity(headers.len());
        for name in headers {
            if let Some(attribute) = name.strip_prefix("attr.") {
                if attribute.is_empty() {
                    return Err(ImportError::new(
                        1,
                        name,
                        "attribute column needs a name after \"attr.\"",
                    ));
                }
                columns.push(Column::Attribute(attribute.to_string()));
            } else if let Some(known) = KNOWN_COLUMNS.iter().find(|known| **known == name) {
                columns.push(Column::Known(known));
            } else {
                return Err(ImportError::new(
                    1,
                    name,
                    format!(
                        "unknown column \"{name}\" (expected one of {} or attr.<name>)",
                        KNOWN_COLUMNS.join(", ")
                    ),
                ));
            }
        }
        for required in ["id", "title"] {
            if !columns
                .iter()
                .any(|column| matches!(column, Column::Known(known) if *known == required))
            {
                return Err(ImportError::new(
                    1,
                    required,
                    format!("missing required column \"{required}\""),
                ));
            }
        }
        Ok(columns)
    }

    fn parse_record(&self, line: u64) -> Result<Item, ImportError> {
        let mut item = Item::new("", "");
        for (column, cell) in self.columns.iter().zip(self.record.iter()) {
            match column {
                Column::Known("id") => item.id = cell.trim().to_string(),
                Column::Known("title") => item.title = cell.trim().to_string(),
                Column::Known("description") => item.description = cell.trim().to_string(),
                Column::Known("url") => item.url = non_empty(cell),
                Column::Known("image") => item.image = non_empty(cell),
                Column::Known("price") => item.price = parse_price(line, cell)?,
                Column::Known("currency") => item.currency = non_empty(cell),
                Column::Known("available") => item.available = parse_available(line, cell)?,
                Column::Known("categories") => item.categories = split_list(cell),
                Column::Known(_) => {}
                Column::Attribute(name) => {
                    let values = split_list(cell);
                    let value = match values.len() {
                        0 => continue,
                        1 if !cell.contains('|') => {
                            AttributeValue::Text(values.into_iter().next().unwrap_or_default())
                        }
                        _ => AttributeValue::List(values),
                    };
                    item.attributes.insert(name.clone(), value);
                }
            }
        }
        check_required(line, &item)?;
        Ok(item)
    }
}

fn check_required(line: u64, item: &Item) -> Result<(), ImportError> {
    if item.id.is_empty() {
        return Err(ImportError::new(line, "id", "id must not be empty"));
    }
    if item.title.is_empty() {
        return Err(ImportError::new(
            line,
            "title",
            format!("title must not be empty (item \"{}\")", item.id),
        ));
    }
    Ok(())
}

fn csv_error(error: csv::Error, fallback_line: u64) -> ImportError {
    let line = error.position().map_or(fallback_line, csv::Position::line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields, found {len}")
        }
        _ => error.to_string(),
    };
    ImportError::new(line, "record", message)
}

impl<R: Read> Iterator for CsvItemReader<R> {
    type Item = Result<Item, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(error) = self.header_error.take() {
            self.done = true;
            return Some(Err(error));
        }
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(self.parse_record(line))
            }
            Err(error) => {
                // I/O errors are fatal; malformed records are not.
                if matches!(error.kind(), csv::ErrorKind::Io(_)) {
                    self.done = true;
                }
                Some(Err(csv_error(error, 0)))
            }
        }
    }
}

/// Streaming JSON catalog parser: JSON Lines or a JSON array of objects.
pub struct JsonItemReader<R: Read> {
    input: BufReader<R>,
    mode: Option<JsonMode>,
    line: u64,
    done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonMode {
    Lines,
    Array,
}

impl<R: Read> JsonItemReader<R> {
    /// Wraps a reader; the format is detected on the first `next()`.
    pub fn new(input: R) -> Self {
        Self {
            input: BufReader::new(input),
            mode: None,
            line: 1,
            done: false,
        }
    }

    fn peek_byte(&mut self) -> Result<Option<u8>, ImportError> {
        let buffer = self.input.fill_buf().map_err(|error| {
            ImportError::new(self.line, "record", format!("read error: {error}"))
        })?;
        Ok(buffer.first().copied())
    }

    fn read_byte(&mut self) -> Result<Option<u8>, ImportError> {
        let byte = self.peek_byte()?;
        if let Some(byte) = byte {
            self.input.consume(1);
            if byte == b'\n' {
                self.line += 1;
            }
        }
        Ok(byte)
    }

    fn skip_whitespace(&mut self) -> Result<Option<u8>, ImportError> {
        while let Some(byte) = self.peek_byte()? {
            if byte.is_ascii_whitespace() {
                self.read_byte()?;
            } else {
                return Ok(Some(byte));
            }
        }
        Ok(None)
    }

    fn next_line_record(&mut self) -> Option<Result<Item, ImportError>> {
        loop {
            let mut buffer = Vec::new();
            let line = self.line;
            match self.input.read_until(b'\n', &mut buffer) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {
                    self.line += 1;
                    if buffer.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(parse_json_record(line, &buffer));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(ImportError::new(
                        line,
                        "record",
                        format!("read error: {error}"),
                    )));
                }
            }
        }
    }

    /// Reads one array element (bytes up to the `,`/`]` at depth 0).
    fn next_array_record(&mut self) -> Option<Result<Item, ImportError>> {
        let first = match self.skip_whitespace() {
            Ok(Some(byte)) => byte,
            Ok(None) => {
                self.done = true;
                return Some(Err(ImportError::new(
                    self.line,
                    "record",
                    "unexpected end of input inside array",
                )));
            }
            Err(error) => {
                self.done = true;
                return Some(Err(error));
            }
        };
        if first == b']' {
            self.done = true;
            return None;
        }
        let start_line = self.line;
        let mut element = Vec::new();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let byte = match self.read_byte() {
                Ok(Some(byte)) => byte,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(ImportError::new(
                        start_line,
                        "record",
                        "unexpected end of input inside array element",
                    )));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            };
            if in_string {
                element.push(byte);
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b']' => {
                    self.done = true;
                    return Some(parse_json_record(start_line, &element));
                }
                b',' if depth == 0 => return Some(parse_json_record(start_line, &element)),
                _ => {}
            }
            element.push(byte);
        }
    }
}

impl<R: Read> Iterator for JsonItemReader<R> {
    type Item = Result<Item, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.mode.is_none() {
            match self.skip_whitespace() {
                Ok(Some(b'[')) => {
                    if let Err(error) = self.read_byte() {
                        self.done = true;
                        return Some(Err(error));
                    }
                    self.mode = Some(JsonMode::Array);
                }
                Ok(Some(_)) => self.mode = Some(JsonMode::Lines),
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
        match self.mode {
            Some(JsonMode::Array) => self.next_array_record(),
            _ => self.next_line_record(),
        }
    }
}

fn parse_json_record(line: u64, bytes: &[u8]) -> Result<Item, ImportError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|error| ImportError::new(line, "record", format!("invalid json: {error}")))?;
    item_from_json(line, &value)
}

fn json_text(line: u64, field: &str, value: &Value) -> Result<Option<String>, ImportError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(non_empty(text)),
        Value::Number(number) => Ok(Some(number.to_string())),
        other => Err(ImportError::new(
            line,
            field,
            format!("expected a string, got {other}"),
        )),
    }
}

fn json_list(line: u64, field: &str, value: &Value) -> Result<Vec<String>, ImportError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(split_list(text)),
        Value::Array(entries) => {
            let mut list = Vec::with_capacity(entries.len());
            for (index, entry) in entries.iter().enumerate() {
                match json_text(line, &format!("{field}[{index}]"), entry)? {
                    Some(text) => list.push(text),
                    None => continue,
                }
            }
            Ok(list)
        }
        other => Err(ImportError::new(
            line,
            field,
            format!("expected a list of strings, got {other}"),
        )),
    }
}

/// Converts one JSON object into an item, naming the field on error.
pub fn item_from_json(line: u64, value: &Value) -> Result<Item, ImportError> {
    let Value::Object(object) = value else {
        return Err(ImportError::new(
            line,
            "record",
            format!("expected a json object, got {value}"),
        ));
    };
    let mut item = Item::new("", "");
    for (key, field) in object {
        match key.as_str() {
            "id" => item.id = json_text(line, "id", field)?.unwrap_or_default(),
            "title" => item.title = json_text(line, "title", field)?.unwrap_or_default(),
            "description" => {
                item.description = json_text(line, "description", field)?.unwrap_or_default()
            }
            "url" => item.url = json_text(line, "url", field)?,
            "image" => item.image = json_text(line, "image", field)?,
            "currency" => item.currency = json_text(line, "currency", field)?,
            "price" => {
                item.price = match field {
                    Value::Null => None,
                    Value::Number(number) => parse_price(line, &number.to_string())?,
                    Value::String(text) => parse_price(line, text)?,
                    other => {
                        return Err(ImportError::new(
                            line,
                            "price",
                            format!("expected a number, got {other}"),
                        ));
                    }
                }
            }
            "available" => {
                item.available = match field {
                    Value::Null => true,
                    Value::Bool(flag) => *flag,
                    Value::String(text) => parse_available(line, text)?,
                    Value::Number(number) => parse_available(line, &number.to_string())?,
                    other => {
                        return Err(ImportError::new(
                            line,
                            "available",
                            format!("expected true/false, got {other}"),
                        ));
                    }
                }
            }
            "categories" => item.categories = json_list(line, "categories", field)?,
            "attributes" => item.attributes = json_attributes(line, field)?,
            unknown => {
                return Err(ImportError::new(
                    line,
                    unknown,
                    format!("unknown field \"{unknown}\" (attributes belong under \"attributes\")"),
                ));
            }
        }
    }
    check_required(line, &item)?;
    Ok(item)
}

fn json_attributes(
    line: u64,
    value: &Value,
) -> Result<BTreeMap<String, AttributeValue>, ImportError> {
    let mut attributes = BTreeMap::new();
    match value {
        Value::Null => {}
        Value::Object(object) => {
            for (name, raw) in object {
                let field = format!("attributes.{name}");
                let attribute = match raw {
                    Value::Null => continue,
                    Value::Bool(flag) => AttributeValue::Bool(*flag),
                    Value::Number(number) => match number.as_f64() {
                        Some(number) => AttributeValue::Number(number),
                        None => {
                            return Err(ImportError::new(
                                line,
                                field,
                                format!("number out of range: {number}"),
                            ))
                        }
                    },
                    Value::String(text) => AttributeValue::Text(text.trim().to_string()),
                    Value::Array(_) => AttributeValue::List(json_list(line, &field, raw)?),
                    Value::Object(_) => {
                        return Err(ImportError::new(
                            line,
                            field,
                            "nested objects are not supported as attribute values",
                        ));
                    }
                };
                attributes.insert(name.clone(), attribute);
            }
        }
        other => {
            return Err(ImportError::new(
                line,
                "attributes",
                format!("expected an object, got {other}"),
            ));
        }
    }
    Ok(attributes)
}

/// Writes items as CSV in the format [`CsvItemReader`] reads (attribute
/// columns are the union over all items, sorted). Used by exports and
/// round-trip tests.
pub fn write_items_csv<W: std::io::Write>(output: W, items: &[Item]) -> Result<(), csv::Error> {
    let mut attribute_names: Vec<&String> = items
        .iter()
        .flat_map(|item| item.attributes.keys())
        .collect();
    attribute_names.sort();
    attribute_names.dedup();
    let mut writer = csv::Writer::from_writer(output);
    let mut header: Vec<String> = KNOWN_COLUMNS
        .iter()
        .map(|column| column.to_string())
        .collect();
    header.extend(attribute_names.iter().map(|name| format!("attr.{name}")));
    writer.write_record(&header)?;
    for item in items {
        let mut row = vec![
            item.id.clone(),
            item.title.clone(),
            item.description.clone(),
            item.url.clone().unwrap_or_default(),
            item.image.clone().unwrap_or_default(),
            item.price
                .map(|price| price.to_string())
                .unwrap_or_default(),
            item.currency.clone().unwrap_or_default(),
            item.available.to_string(),
            item.categories.join("|"),
        ];
        for name in &attribute_names {
            row.push(match item.attributes.get(*name) {
                Some(value) => value.values().join("|"),
                None => String::new(),
            });
        }
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(())
}
