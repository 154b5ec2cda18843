//! The view of an event that computed traits aggregate over. Borrowed, so the ingestion path
//! builds it from its own event without copying.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use kreislauf_expr::literal::format_instant;
use kreislauf_expr::Facts;

/// One event as computed traits see it.
#[derive(Debug, Clone, Copy)]
pub struct TraitEvent<'a> {
    /// `event` of a track, `name` of a page or screen.
    pub name: &'a str,
    /// The source's name.
    pub source: &'a str,
    /// The source's brand.
    pub brand: &'a str,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The `properties` object, if any.
    pub properties: Option<&'a Value>,
    /// The `context` object, if any.
    pub context: Option<&'a Value>,
}

impl<'a> TraitEvent<'a> {
    pub fn new(name: &'a str, source: &'a str, brand: &'a str, timestamp: DateTime<Utc>) -> Self {
        Self {
            name,
            source,
            brand,
            timestamp,
            properties: None,
            context: None,
        }
    }

    pub fn with_properties(mut self, properties: &'a Value) -> Self {
        self.properties = Some(properties);
        self
    }

    /// The value at an event path (`timestamp`, `properties.revenue`, ...), walked like the
    /// condition language walks it.
    pub fn value_at(&self, field: &str, rest: &[String]) -> Option<Cow<'a, Value>> {
        let top: Cow<'a, Value> = match field {
            "name" => Cow::Owned(Value::String(self.name.to_owned())),
            "source" => Cow::Owned(Value::String(self.source.to_owned())),
            "brand" => Cow::Owned(Value::String(self.brand.to_owned())),
            "type" => Cow::Owned(Value::String("track".to_owned())),
            "timestamp" => Cow::Owned(Value::String(format_instant(self.timestamp))),
            "properties" => Cow::Borrowed(self.properties?),
            "context" => Cow::Borrowed(self.context?),
            _ => return None,
        };
        if rest.is_empty() {
            return Some(top);
        }
        let Cow::Borrowed(mut v) = top else {
            return None;
        };
        for key in rest {
            v = match v {
                Value::Object(map) => map.get(key)?,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(Cow::Borrowed(v))
    }
}

impl Facts for TraitEvent<'_> {
    fn event_field(&self, field: &str) -> Option<Cow<'_, Value>> {
        self.value_at(field, &[])
    }
}
