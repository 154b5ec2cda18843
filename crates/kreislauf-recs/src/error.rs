//! Error types. Every message is lowercase and names the offending field
//! and value so that an operator can fix the input without reading code.

use std::path::PathBuf;

/// A per-record import problem: which line, which field, what was wrong.
///
/// Parsers yield these instead of aborting, so good lines are kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: field \"{field}\": {message}")]
pub struct ImportError {
    /// 1-based line number in the input where the record starts.
    pub line: u64,
    /// The field (column or JSON key) that was wrong; `record` for
    /// structural problems of the whole line.
    pub field: String,
    /// What was wrong, including the offending value.
    pub message: String,
}

impl ImportError {
    pub(crate) fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One problem found while validating a pairing-rule document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleProblem {
    /// Path into the document, e.g. `rules[3].to.attribute`.
    pub path: String,
    /// What is wrong, with a did-you-mean suggestion where one is close.
    pub message: String,
}

/// Errors of pairing-rule documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The document is not valid YAML/JSON or does not have the rule shape.
    #[error("cannot parse {format} rule document: {message}")]
    Parse {
        /// `yaml` or `json`.
        format: &'static str,
        /// Parser message (contains line/column where the parser knows it).
        message: String,
    },
    /// The document parsed but failed validation.
    #[error("invalid rule document ({} problem(s)): {}", .0.len(), join_problems(.0))]
    Invalid(Vec<RuleProblem>),
}

fn join_problems(problems: &[RuleProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Errors of the recommendation engine and its helpers.
#[derive(Debug, thiserror::Error)]
pub enum RecsError {
    /// A catalog name that is not part of the catalog set / model.
    #[error("unknown catalog \"{0}\"")]
    UnknownCatalog(String),
    /// An item key that is not (or no longer) in its catalog.
    #[error("unknown item \"{id}\" in catalog \"{catalog}\"")]
    UnknownItem {
        /// Catalog name.
        catalog: String,
        /// Item id.
        id: String,
    },
    /// A request field with an unusable value.
    #[error("invalid request field \"{field}\": {message}")]
    InvalidRequest {
        /// Field name, e.g. `count`.
        field: &'static str,
        /// What is wrong, including the value.
        message: String,
    },
    /// A rule document problem.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A record that could not be imported.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// File-system problem while exporting or reading evaluation data.
    #[error("i/o error on \"{}\": {source}", path.display())]
    Io {
        /// Path being read or written.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The external baseline script failed or printed something unreadable.
    #[error("baseline script \"{}\" failed: {message}", script.display())]
    Script {
        /// Script path.
        script: PathBuf,
        /// Exit status / stderr excerpt / parse error.
        message: String,
    },
}

impl RecsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
