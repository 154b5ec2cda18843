//! The shared storage conformance suite against the embedded SQLite backend.

use std::sync::Arc;

use kreislauf_store::Store;
use kreislauf_store_sqlite::SqliteStore;

async fn fresh_store() -> Option<Arc<dyn Store>> {
    // The directory must outlive the store; it is removed with the test process's temp files.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Some(Arc::new(
        SqliteStore::open(&dir.join("kreislauf.db")).expect("open sqlite"),
    ))
}

kreislauf_store::store_conformance_tests!(fresh_store());
