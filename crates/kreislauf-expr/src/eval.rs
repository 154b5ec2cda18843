//! Evaluation of compiled conditions, and the earliest instant at which passing time alone could
//! change a result.
//!
//! Semantics for missing data (two-valued, no "unknown"):
//! * An operand is *missing* if it is absent, `null`, `""`, or a list without present elements.
//! * Every operator except `missing` is **false** on a missing operand — including `ne` and
//!   `not_in`, which mean "present and not equal / in none".
//! * Values of the wrong type (e.g. `gt: 5` on `"abc"`) compare false, like missing ones.
//! * `not` is plain negation of that result, so `not: {path: trait.city, eq: Bern}` includes
//!   profiles without a city while `{path: trait.city, ne: Bern}` does not. Hence `not not e ≡ e`
//!   and De Morgan's laws hold exactly.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::calendar::{
    first_of_coming_month, first_of_next_month, local_date, next_anniversary, start_of_day,
};
use crate::compile::{CLit, CTest, CmpOp, Compiled, Needle, Node, Operand, OrdLit, Pred, TextOp};
use crate::facts::Facts;
use crate::fold::Folded;
use crate::glob::glob_match;
use crate::literal::{parse_decimal, parse_temporal, Anniversary, Temporal};

impl Compiled {
    /// Whether the condition holds for `facts` at `now`.
    pub fn evaluate<F: Facts + ?Sized>(&self, facts: &F, now: DateTime<Utc>) -> bool {
        let ctx = Ctx::new(facts, now);
        ctx.eval(&self.root)
    }

    /// The earliest instant after `now` at which the result could flip while the facts stay the
    /// same (relative dates ageing, anniversaries in the customer's time zone). No flip can
    /// happen before it; at that instant, evaluate again and ask again. `None`: the result
    /// cannot change through time alone. Segment membership (`in_segment`) and computed traits
    /// are taken as constant: schedule those through their own next-change instants.
    pub fn next_time_change<F: Facts + ?Sized>(
        &self,
        facts: &F,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !self.is_time_dependent() {
            return None;
        }
        let ctx = Ctx::new(facts, now);
        ctx.eval_timed(&self.root).1.filter(|t| *t > now)
    }
}

/// Free-function form of [`Compiled::next_time_change`].
pub fn next_time_change<F: Facts + ?Sized>(
    compiled: &Compiled,
    facts: &F,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    compiled.next_time_change(facts, now)
}

struct Ctx<'f, F: ?Sized> {
    facts: &'f F,
    now: DateTime<Utc>,
    tz: Tz,
}

/// A resolved operand.
enum Resolved<'a> {
    Json(Cow<'a, Value>),
    Strings(&'a [String]),
}

/// One element of a (possibly list-valued) operand.
#[derive(Clone, Copy)]
enum Elem<'a> {
    Json(&'a Value),
    Str(&'a str),
}

impl<'a> Resolved<'a> {
    /// Present elements: not null, not empty strings.
    fn elements(&self) -> impl Iterator<Item = Elem<'_>> {
        let (json, strings): (Option<&Value>, &[String]) = match self {
            Resolved::Json(v) => (Some(v.as_ref()), &[]),
            Resolved::Strings(s) => (None, s),
        };
        let json_items: Box<dyn Iterator<Item = &Value>> = match json {
            Some(Value::Array(items)) => Box::new(items.iter()),
            Some(v) => Box::new(std::iter::once(v)),
            None => Box::new(std::iter::empty()),
        };
        json_items
            .map(Elem::Json)
            .chain(strings.iter().map(|s| Elem::Str(s)))
            .filter(|e| e.is_present())
    }
}

impl<'a> Elem<'a> {
    fn is_present(&self) -> bool {
        match self {
            Elem::Json(Value::Null) => false,
            Elem::Json(Value::String(s)) => !s.is_empty(),
            Elem::Str(s) => !s.is_empty(),
            Elem::Json(Value::Array(items)) => !items.is_empty(),
            Elem::Json(_) => true,
        }
    }

    fn as_str(&self) -> Option<Cow<'a, str>> {
        match *self {
            Elem::Str(s) => Some(Cow::Borrowed(s)),
            Elem::Json(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            Elem::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Elem::Json(_) => None,
        }
    }

    fn as_number(&self) -> Option<f64> {
        match *self {
            Elem::Json(Value::Number(n)) => n.as_f64(),
            Elem::Json(Value::String(s)) => parse_decimal(s),
            Elem::Str(s) => parse_decimal(s),
            Elem::Json(_) => None,
        }
    }

    fn as_temporal(&self) -> Option<Temporal> {
        match *self {
            Elem::Json(Value::String(s)) => parse_temporal(s),
            Elem::Str(s) => parse_temporal(s),
            Elem::Json(_) => None,
        }
    }

    fn as_date(&self, tz: Tz) -> Option<NaiveDate> {
        match self.as_temporal()? {
            Temporal::Date(d) => Some(d),
            Temporal::Instant(t) => Some(local_date(t, tz)),
        }
    }

    fn as_instant(&self, tz: Tz) -> Option<DateTime<Utc>> {
        match self.as_temporal()? {
            Temporal::Date(d) => start_of_day(d, tz),
            Temporal::Instant(t) => Some(t),
        }
    }
}

fn walk<'v>(mut value: &'v Value, rest: &[String]) -> Option<&'v Value> {
    for key in rest {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn walk_cow<'v>(value: Cow<'v, Value>, rest: &[String]) -> Option<Cow<'v, Value>> {
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        Cow::Borrowed(v) => walk(v, rest).map(Cow::Borrowed),
        Cow::Owned(v) => walk(&v, rest).cloned().map(Cow::Owned),
    }
}

/// Lower bound for the next flip of a disjunction (existential over elements, or `any`):
/// while true, every true part must flip first; while false, any part may flip.
fn any_change(
    parts: impl Iterator<Item = (bool, Option<DateTime<Utc>>)>,
) -> (bool, Option<DateTime<Utc>>) {
    let mut value = false;
    let mut latest_true: Option<DateTime<Utc>> = None;
    let mut true_part_never_changes = false;
    let mut earliest: Option<DateTime<Utc>> = None;
    for (v, change) in parts {
        if v {
            value = true;
            match change {
                None => true_part_never_changes = true,
                Some(c) => latest_true = Some(latest_true.map_or(c, |l| l.max(c))),
            }
        }
        if let Some(c) = change {
            earliest = Some(earliest.map_or(c, |e| e.min(c)));
        }
    }
    if value {
        (
            true,
            if true_part_never_changes {
                None
            } else {
                latest_true
            },
        )
    } else {
        (false, earliest)
    }
}

impl<'f, F: Facts + ?Sized> Ctx<'f, F> {
    fn new(facts: &'f F, now: DateTime<Utc>) -> Self {
        Self {
            facts,
            now,
            tz: facts.timezone().unwrap_or(Tz::UTC),
        }
    }

    fn eval(&self, node: &Node) -> bool {
        match node {
            Node::Const(b) => *b,
            Node::All(items) => items.iter().all(|n| self.eval(n)),
            Node::Any(items) => items.iter().any(|n| self.eval(n)),
            Node::Not(inner) => !self.eval(inner),
            Node::InSegment(id) => self.facts.in_segment(id),
            Node::Pred(p) => self.eval_pred(p).0,
        }
    }

    /// The value and a lower bound of the next instant it could flip through time alone.
    fn eval_timed(&self, node: &Node) -> (bool, Option<DateTime<Utc>>) {
        match node {
            Node::Const(b) => (*b, None),
            Node::InSegment(id) => (self.facts.in_segment(id), None),
            Node::Not(inner) => {
                let (v, c) = self.eval_timed(inner);
                (!v, c)
            }
            // all(x) = not any(not x)
            Node::All(items) => {
                let (v, c) = any_change(items.iter().map(|n| {
                    let (v, c) = self.eval_timed(n);
                    (!v, c)
                }));
                (!v, c)
            }
            Node::Any(items) => any_change(items.iter().map(|n| self.eval_timed(n))),
            Node::Pred(p) => self.eval_pred(p),
        }
    }

    fn resolve(&self, operand: &Operand) -> Option<Resolved<'f>> {
        let facts = self.facts;
        Some(match operand {
            Operand::Trait { name, rest } => {
                Resolved::Json(Cow::Borrowed(walk(facts.trait_value(name)?, rest)?))
            }
            Operand::Computed(name) => Resolved::Json(Cow::Owned(facts.computed(name)?)),
            Operand::Identity(kind) => Resolved::Strings(facts.identities(*kind)),
            Operand::Consent {
                brand,
                channel,
                purpose,
            } => Resolved::Json(Cow::Owned(Value::Bool(
                facts.consent(brand, channel, purpose)?,
            ))),
            Operand::Event { field, rest } => {
                Resolved::Json(walk_cow(facts.event_field(field)?, rest)?)
            }
            Operand::Profile(attr) => Resolved::Json(facts.profile_attribute(attr)?),
        })
    }

    fn eval_pred(&self, p: &Pred) -> (bool, Option<DateTime<Utc>>) {
        let resolved = self.resolve(&p.operand);
        let present = resolved
            .as_ref()
            .is_some_and(|r| r.elements().next().is_some());
        let Some(r) = resolved.filter(|_| present) else {
            return (matches!(p.test, CTest::Missing), None);
        };
        let tz = self.tz;
        let any = |f: &dyn Fn(Elem<'_>) -> bool| r.elements().any(f);
        let value = match &p.test {
            CTest::Exists => true,
            CTest::Missing => false,
            CTest::OneOf(lits) => any(&|e| lits.iter().any(|l| elem_eq(e, l, tz))),
            CTest::NoneOf(lits) => !any(&|e| lits.iter().any(|l| elem_eq(e, l, tz))),
            CTest::AllOf(lits) => lits.iter().all(|l| any(&|e| elem_eq(e, l, tz))),
            CTest::Cmp(op, lit) => any(&|e| {
                elem_cmp(e, lit, tz).is_some_and(|o| match op {
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                })
            }),
            CTest::Between(low, high) => any(&|e| {
                elem_cmp(e, low, tz).is_some_and(|o| o != Ordering::Less)
                    && elem_cmp(e, high, tz).is_some_and(|o| o != Ordering::Greater)
            }),
            CTest::Text(op, needle) => {
                any(&|e| e.as_str().is_some_and(|s| text_test(&s, needle, *op)))
            }
            CTest::WithinLast(_)
            | CTest::MoreThanAgo(_)
            | CTest::WithinNext(_)
            | CTest::Anniversary(_) => {
                return any_change(r.elements().map(|e| self.timed_elem(&p.test, e)));
            }
        };
        (value, None)
    }

    /// Value and next flip of a time-relative test on one element; non-temporal elements are
    /// false forever.
    fn timed_elem(&self, test: &CTest, e: Elem<'_>) -> (bool, Option<DateTime<Utc>>) {
        self.timed_elem_inner(test, e).unwrap_or((false, None))
    }

    fn timed_elem_inner(&self, test: &CTest, e: Elem<'_>) -> Option<(bool, Option<DateTime<Utc>>)> {
        let (now, tz) = (self.now, self.tz);
        let plus = |t: DateTime<Utc>, d: TimeDelta| t.checked_add_signed(d);
        let minus = |t: DateTime<Utc>, d: TimeDelta| t.checked_sub_signed(d);
        Some(match test {
            CTest::WithinLast(d) => {
                let t = e.as_instant(tz)?;
                let value = t <= now && minus(now, *d).is_none_or(|start| start < t);
                let change = if t > now {
                    Some(t)
                } else if value {
                    plus(t, *d)
                } else {
                    None
                };
                (value, change)
            }
            CTest::MoreThanAgo(d) => {
                let t = e.as_instant(tz)?;
                let value = minus(now, *d).is_some_and(|limit| t <= limit);
                (value, if value { None } else { plus(t, *d) })
            }
            CTest::WithinNext(d) => {
                let t = e.as_instant(tz)?;
                let horizon = plus(now, *d)?;
                let value = now < t && t <= horizon;
                let change = if value {
                    Some(t)
                } else if t > horizon {
                    minus(t, *d)
                } else {
                    None
                };
                (value, change)
            }
            CTest::Anniversary(which) => {
                let date = e.as_date(tz)?;
                let today = local_date(now, tz);
                let tomorrow = today.succ_opt()?;
                match which {
                    Anniversary::Today => {
                        let next = next_anniversary(date, today)?;
                        let value = next == today;
                        let flip_day = if value { tomorrow } else { next };
                        (value, start_of_day(flip_day, tz))
                    }
                    Anniversary::Tomorrow => {
                        let next = next_anniversary(date, tomorrow)?;
                        let value = next == tomorrow;
                        let flip_day = if value { tomorrow } else { next.pred_opt()? };
                        (value, start_of_day(flip_day, tz))
                    }
                    Anniversary::ThisMonth => {
                        let value = date.month() == today.month();
                        let flip_day = if value {
                            first_of_next_month(today)?
                        } else {
                            first_of_coming_month(date.month(), today)?
                        };
                        (value, start_of_day(flip_day, tz))
                    }
                }
            }
            _ => return None,
        })
    }
}

fn elem_eq(e: Elem<'_>, lit: &CLit, tz: Tz) -> bool {
    match lit {
        CLit::Bool(b) => matches!(e, Elem::Json(Value::Bool(v)) if v == b),
        CLit::Number(n) => e.as_number() == Some(*n),
        CLit::Text(needle) => e.as_str().is_some_and(|s| text_equal(&s, needle)),
        CLit::Date(d) => e.as_date(tz) == Some(*d),
        CLit::Instant(t) => e.as_instant(tz) == Some(*t),
    }
}

fn elem_cmp(e: Elem<'_>, lit: &OrdLit, tz: Tz) -> Option<Ordering> {
    match lit {
        OrdLit::Number(n) => e.as_number()?.partial_cmp(n),
        OrdLit::Date(d) => Some(e.as_date(tz)?.cmp(d)),
        OrdLit::Instant(t) => Some(e.as_instant(tz)?.cmp(t)),
    }
}

fn text_equal(s: &str, needle: &Needle) -> bool {
    match &needle.folded {
        None => s == needle.raw,
        Some(f) => {
            let fs = Folded::new(s);
            fs.plain == f.plain || fs.translit == f.translit
        }
    }
}

fn text_test(s: &str, needle: &Needle, op: TextOp) -> bool {
    let apply = |hay: &str, pat: &str| match op {
        TextOp::Contains => hay.contains(pat),
        TextOp::StartsWith => hay.starts_with(pat),
        TextOp::EndsWith => hay.ends_with(pat),
        TextOp::Glob => glob_match(pat, hay),
    };
    match &needle.folded {
        None => apply(s, &needle.raw),
        Some(f) => {
            let fs = Folded::new(s);
            apply(&fs.plain, &f.plain) || apply(&fs.translit, &f.translit)
        }
    }
}
