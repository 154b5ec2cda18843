//! Compilation: validate an [`Expr`] against a [`Scope`] (which namespaces are allowed, which
//! computed traits and segments exist), resolve paths and pre-normalise literals (folded strings,
//! typed numbers and dates) into a [`Compiled`] form that evaluates without further parsing.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::ast::{Expr, Predicate, References, Test};
use crate::error::{child, index, ValidationErrors};
use crate::fold::Folded;
use crate::literal::{Anniversary, Literal};
use crate::path::{IdentityKind, Namespace, Path};
use crate::suggest::hint;

/// A set of known names (computed traits, segment ids) to validate references against.
pub trait NameSet {
    fn contains_name(&self, name: &str) -> bool;
    /// All names, for "did you mean" suggestions.
    fn names(&self) -> Vec<&str>;
}

impl NameSet for BTreeSet<String> {
    fn contains_name(&self, name: &str) -> bool {
        self.contains(name)
    }
    fn names(&self) -> Vec<&str> {
        self.iter().map(String::as_str).collect()
    }
}

impl NameSet for HashSet<String> {
    fn contains_name(&self, name: &str) -> bool {
        self.contains(name)
    }
    fn names(&self) -> Vec<&str> {
        self.iter().map(String::as_str).collect()
    }
}

impl NameSet for Vec<&str> {
    fn contains_name(&self, name: &str) -> bool {
        self.contains(&name)
    }
    fn names(&self) -> Vec<&str> {
        self.clone()
    }
}

impl NameSet for Vec<String> {
    fn contains_name(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }
    fn names(&self) -> Vec<&str> {
        self.iter().map(String::as_str).collect()
    }
}

/// What a condition may refer to in one use of the language.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    namespaces: &'a [Namespace],
    /// `None`: any computed-trait name is accepted.
    computed: Option<&'a dyn NameSet>,
    /// `None`: any segment id is accepted.
    segments: Option<&'a dyn NameSet>,
}

const PROFILE_NAMESPACES: &[Namespace] = &[
    Namespace::Trait,
    Namespace::Computed,
    Namespace::Identity,
    Namespace::Consent,
    Namespace::Profile,
    Namespace::Segment,
];
const ALL_NAMESPACES: &[Namespace] = &[
    Namespace::Trait,
    Namespace::Computed,
    Namespace::Identity,
    Namespace::Consent,
    Namespace::Profile,
    Namespace::Segment,
    Namespace::Event,
];
const EVENT_ONLY: &[Namespace] = &[Namespace::Event];

impl<'a> Scope<'a> {
    /// Segment conditions: the profile, never an event (segments hold between events).
    pub fn segment(computed: &'a dyn NameSet, segments: &'a dyn NameSet) -> Self {
        Self {
            namespaces: PROFILE_NAMESPACES,
            computed: Some(computed),
            segments: Some(segments),
        }
    }

    /// Journey conditions (branches, entry filters): the profile and the trigger event.
    pub fn journey(computed: &'a dyn NameSet, segments: &'a dyn NameSet) -> Self {
        Self {
            namespaces: ALL_NAMESPACES,
            computed: Some(computed),
            segments: Some(segments),
        }
    }

    /// Event filters (computed-trait `where`, journey triggers): only `event.*`.
    pub fn event_filter() -> Self {
        Self {
            namespaces: EVENT_ONLY,
            computed: None,
            segments: None,
        }
    }

    /// Everything allowed and no name checked (tests, ad-hoc previews).
    pub fn unchecked() -> Scope<'static> {
        Scope {
            namespaces: ALL_NAMESPACES,
            computed: None,
            segments: None,
        }
    }

    pub fn allows(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    fn allowed_list(&self) -> String {
        self.namespaces
            .iter()
            .filter(|n| **n != Namespace::Segment)
            .map(|n| format!("{}.*", n.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A validated, resolved, pre-normalised condition ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub(crate) root: Node,
    references: References,
    expr: Expr,
}

impl Compiled {
    /// The expression this was compiled from.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Everything the expression refers to.
    pub fn references(&self) -> &References {
        &self.references
    }

    /// Whether passing time alone can change the result.
    pub fn is_time_dependent(&self) -> bool {
        self.references.time_dependent
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(bool),
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    InSegment(String),
    Pred(Pred),
}

#[derive(Debug, Clone)]
pub(crate) struct Pred {
    pub operand: Operand,
    pub test: CTest,
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Trait {
        name: String,
        rest: Vec<String>,
    },
    Computed(String),
    Identity(IdentityKind),
    Consent {
        brand: String,
        channel: String,
        purpose: String,
    },
    Event {
        field: String,
        rest: Vec<String>,
    },
    Profile(String),
}

/// A string literal with its folds when compared case-insensitively.
#[derive(Debug, Clone)]
pub(crate) struct Needle {
    pub raw: String,
    pub folded: Option<Folded>,
}

#[derive(Debug, Clone)]
pub(crate) enum CLit {
    Bool(bool),
    Number(f64),
    Text(Needle),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum OrdLit {
    Number(f64),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
    Glob,
}

#[derive(Debug, Clone)]
pub(crate) enum CTest {
    Exists,
    Missing,
    /// `eq`, `in`, `any_of`: some element equals some literal.
    OneOf(Vec<CLit>),
    /// `ne`, `not_in`: present, and no element equals any literal.
    NoneOf(Vec<CLit>),
    /// Every literal equals some element.
    AllOf(Vec<CLit>),
    Cmp(CmpOp, OrdLit),
    Between(OrdLit, OrdLit),
    Text(TextOp, Needle),
    WithinLast(TimeDelta),
    MoreThanAgo(TimeDelta),
    WithinNext(TimeDelta),
    Anniversary(Anniversary),
}

/// Validates and compiles `expr`; errors are located relative to the condition's root.
pub fn compile(expr: &Expr, scope: &Scope<'_>) -> Result<Compiled, ValidationErrors> {
    compile_at(expr, scope, "")
}

/// Like [`compile`], for a condition found at field path `at` in its document.
pub fn compile_at(expr: &Expr, scope: &Scope<'_>, at: &str) -> Result<Compiled, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let root = compile_node(expr, scope, at, &mut errors);
    errors.into_result(Compiled {
        root,
        references: expr.references(),
        expr: expr.clone(),
    })
}

fn compile_node(expr: &Expr, scope: &Scope<'_>, at: &str, errors: &mut ValidationErrors) -> Node {
    match expr {
        Expr::Const(b) => Node::Const(*b),
        Expr::All(items) | Expr::Any(items) => {
            let key = if matches!(expr, Expr::All(_)) {
                "all"
            } else {
                "any"
            };
            let list_at = child(at, key);
            if items.is_empty() {
                errors.push(
                    list_at.clone(),
                    "expected at least one condition, found an empty list",
                );
            }
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, e)| compile_node(e, scope, &index(&list_at, i), errors))
                .collect();
            if key == "all" {
                Node::All(nodes)
            } else {
                Node::Any(nodes)
            }
        }
        Expr::Not(inner) => Node::Not(Box::new(compile_node(
            inner,
            scope,
            &child(at, "not"),
            errors,
        ))),
        Expr::InSegment(id) => {
            let id_at = child(at, "in_segment");
            if !scope.allows(Namespace::Segment) {
                errors.push(id_at, "segment membership is not available here");
            } else if let Some(known) = scope.segments {
                if !known.contains_name(id) {
                    errors.push(
                        id_at,
                        format!("unknown segment \"{id}\"{}", hint(id, known.names())),
                    );
                }
            }
            Node::InSegment(id.clone())
        }
        Expr::Test(p) => {
            let path_at = match p.test {
                Test::Exists => child(at, "exists"),
                Test::Missing => child(at, "missing"),
                _ => child(at, "path"),
            };
            let operand = compile_operand(&p.path, scope, &path_at, errors);
            let test = compile_test(p, &child(at, p.test.operator()), errors);
            Node::Pred(Pred { operand, test })
        }
    }
}

fn compile_operand(
    path: &Path,
    scope: &Scope<'_>,
    at: &str,
    errors: &mut ValidationErrors,
) -> Operand {
    if !scope.allows(path.namespace()) {
        errors.push(
            at,
            format!(
                "\"{path}\" is not available here; allowed: {}",
                scope.allowed_list()
            ),
        );
    }
    match path {
        Path::Trait { name, rest } => Operand::Trait {
            name: name.clone(),
            rest: rest.clone(),
        },
        Path::Computed(name) => {
            if let Some(known) = scope.computed {
                if scope.allows(Namespace::Computed) && !known.contains_name(name) {
                    errors.push(
                        at,
                        format!(
                            "unknown computed trait \"{name}\"{}",
                            hint(name, known.names())
                        ),
                    );
                }
            }
            Operand::Computed(name.clone())
        }
        Path::Identity(kind) => Operand::Identity(*kind),
        Path::Consent {
            brand,
            channel,
            purpose,
        } => Operand::Consent {
            brand: brand.clone(),
            channel: channel.clone(),
            purpose: purpose.clone(),
        },
        Path::Event { field, rest } => Operand::Event {
            field: field.clone(),
            rest: rest.clone(),
        },
        Path::Profile(attr) => Operand::Profile(attr.clone()),
    }
}

fn compile_test(p: &Predicate, at: &str, errors: &mut ValidationErrors) -> CTest {
    let fold = p.ignore_case;
    let lit = |l: &Literal| compile_literal(l, fold);
    let list = |ls: &[Literal], errors: &mut ValidationErrors| {
        if ls.is_empty() {
            errors.push(at, "expected at least one value, found an empty list");
        }
        ls.iter().map(lit).collect::<Vec<_>>()
    };
    let ordered = |l: &Literal, errors: &mut ValidationErrors| match l {
        Literal::Number(n) => OrdLit::Number(*n),
        Literal::Date(d) => OrdLit::Date(*d),
        Literal::DateTime(t) => OrdLit::Instant(*t),
        other => {
            errors.push(
                at,
                format!("expected a number or a date, found {}", other.kind()),
            );
            OrdLit::Number(f64::NAN)
        }
    };
    let text = |s: &str, errors: &mut ValidationErrors| {
        if s.is_empty() {
            errors.push(at, "expected a non-empty string, found \"\"");
        }
        needle(s, fold)
    };
    match &p.test {
        Test::Exists => CTest::Exists,
        Test::Missing => CTest::Missing,
        Test::Eq(l) => CTest::OneOf(vec![lit(l)]),
        Test::Ne(l) => CTest::NoneOf(vec![lit(l)]),
        Test::In(ls) | Test::AnyOf(ls) => CTest::OneOf(list(ls, errors)),
        Test::NotIn(ls) => CTest::NoneOf(list(ls, errors)),
        Test::AllOf(ls) => CTest::AllOf(list(ls, errors)),
        Test::Lt(l) => CTest::Cmp(CmpOp::Lt, ordered(l, errors)),
        Test::Le(l) => CTest::Cmp(CmpOp::Le, ordered(l, errors)),
        Test::Gt(l) => CTest::Cmp(CmpOp::Gt, ordered(l, errors)),
        Test::Ge(l) => CTest::Cmp(CmpOp::Ge, ordered(l, errors)),
        Test::Between(a, b) => {
            let (low, high) = (ordered(a, errors), ordered(b, errors));
            let consistent = match (low, high) {
                (OrdLit::Number(x), OrdLit::Number(y)) => x <= y,
                (OrdLit::Date(x), OrdLit::Date(y)) => x <= y,
                (OrdLit::Instant(x), OrdLit::Instant(y)) => x <= y,
                _ => false,
            };
            if !consistent {
                errors.push(at, "expected [low, high] of the same kind with low <= high");
            }
            CTest::Between(low, high)
        }
        Test::Contains(s) => CTest::Text(TextOp::Contains, text(s, errors)),
        Test::StartsWith(s) => CTest::Text(TextOp::StartsWith, text(s, errors)),
        Test::EndsWith(s) => CTest::Text(TextOp::EndsWith, text(s, errors)),
        Test::Matches(s) => CTest::Text(TextOp::Glob, text(s, errors)),
        Test::WithinLast(s) => CTest::WithinLast(s.duration()),
        Test::MoreThanAgo(s) => CTest::MoreThanAgo(s.duration()),
        Test::WithinNext(s) => CTest::WithinNext(s.duration()),
        Test::Anniversary(a) => CTest::Anniversary(*a),
    }
}

fn needle(s: &str, fold: bool) -> Needle {
    Needle {
        raw: s.to_owned(),
        folded: fold.then(|| Folded::new(s)),
    }
}

fn compile_literal(l: &Literal, fold: bool) -> CLit {
    match l {
        Literal::Bool(b) => CLit::Bool(*b),
        Literal::Number(n) => CLit::Number(*n),
        Literal::String(s) => CLit::Text(needle(s, fold)),
        Literal::Date(d) => CLit::Date(*d),
        Literal::DateTime(t) => CLit::Instant(*t),
    }
}
