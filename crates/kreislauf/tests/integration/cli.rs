//! The CLI against a real data folder: import with rejects and re-runs, profile commands, erasure.

use crate::support::{cli, cli_output, ServerProcess};

#[test]
fn import_customers_reports_line_numbers_and_reruns_without_duplicates() {
    let dir = tempfile::tempdir().expect("tmp");
    cli(
        dir.path(),
        &[
            "source",
            "create",
            "crm",
            "--brand",
            "supermarket",
            "--channel",
            "crm",
        ],
    );
    let csv = dir.path().join("kunden.csv");
    std::fs::write(
        &csv,
        "user_id,email,first_name,last_name,loyalty_card,city\n\
         k-1,anna.meier@example.ch,Anna,Meier,1001,Zürich\n\
         k-2,ben@example.de,Ben,Schmid,1002,Berlin\n\
         ,,Niemand,,,Bern\n\
         k-3,clara@example.at,Clara,Huber,1003,Wien\n",
    )
    .expect("csv");
    let out = cli_output(
        dir.path(),
        &[
            "import",
            "customers",
            csv.to_str().expect("path"),
            "--source",
            "crm",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("4 lines, 3 stored, 0 already there, 1 rejected"),
        "{stderr}"
    );
    let rejects =
        std::fs::read_to_string(dir.path().join("kunden.csv.rejects.csv")).expect("rejects file");
    assert!(
        rejects.lines().any(|l| l.starts_with("4,user_id,")),
        "{rejects}"
    );
    let again = cli_output(
        dir.path(),
        &[
            "import",
            "customers",
            csv.to_str().expect("path"),
            "--source",
            "crm",
        ],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 stored, 3 already there"));

    let shown = cli(
        dir.path(),
        &["profile", "lookup", "email", "Anna.Meier@example.ch"],
    );
    let profile: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(profile["traits"]["city"]["value"], "Zürich");
    let id = profile["id"].to_string();

    let refused = cli_output(dir.path(), &["profile", "erase", &id]);
    assert!(!refused.status.success(), "erase asks for --yes");
    cli(dir.path(), &["profile", "erase", &id, "--yes"]);
    assert!(!cli_output(
        dir.path(),
        &["profile", "lookup", "email", "anna.meier@example.ch"]
    )
    .status
    .success());
    let export = cli_output(dir.path(), &["profile", "export", &id]);
    assert!(!export.status.success());
}

#[test]
fn unknown_source_and_missing_file_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = cli_output(
        dir.path(),
        &["import", "events", "/nonexistent.csv", "--source", "nope"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source named \"nope\""));
}

#[test]
fn a_second_writer_on_the_same_folder_is_refused_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    cli(
        dir.path(),
        &["source", "create", "crm", "--brand", "b", "--channel", "c"],
    );
    let server = ServerProcess::start(dir.path());
    let csv = dir.path().join("c.csv");
    std::fs::write(&csv, "user_id\nx\n").expect("csv");
    let out = cli_output(
        dir.path(),
        &[
            "import",
            "customers",
            csv.to_str().expect("path"),
            "--source",
            "crm",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another kreislauf process"));
    // Read-only commands still work.
    cli(dir.path(), &["source", "list"]);
    drop(server);
}

#[test]
fn demo_replays_the_retail_group_and_reports() {
    let dir = tempfile::tempdir().expect("tmp");
    let demo_dir = dir.path().join("demo");
    let port = crate::support::free_port().to_string();
    let out = std::process::Command::new(crate::support::BIN)
        .args([
            "demo",
            "--no-serve",
            "--customers",
            "300",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(&demo_dir)
        .env("KREISLAUF_LOG", "warn")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("The Prosecco buyer"), "{stdout}");
    assert!(
        stdout.contains("Prosecco DOC Bio, Treviso"),
        "the hero bought the Prosecco: {stdout}"
    );
    for brand in ["supermarket-pos", "wine-club-web", "recipes-web"] {
        assert!(
            stdout.contains(brand),
            "one timeline across brands, {brand} missing: {stdout}"
        );
    }
    assert!(stdout.contains("Data quality"), "{stdout}");
    assert!(demo_dir.join("kreislauf.db").exists());
    // A second run starts afresh in the same folder.
    let again = std::process::Command::new(crate::support::BIN)
        .args([
            "demo",
            "--no-serve",
            "--customers",
            "50",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(&demo_dir)
        .env("KREISLAUF_LOG", "warn")
        .output()
        .expect("run demo");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("50 customers"));
}

#[test]
fn segments_are_applied_previewed_listed_and_exported_from_the_cli() {
    let dir = tempfile::tempdir().expect("tmp");
    cli(
        dir.path(),
        &[
            "source",
            "create",
            "crm",
            "--brand",
            "supermarket",
            "--channel",
            "crm",
        ],
    );
    let csv = dir.path().join("kunden.csv");
    std::fs::write(
        &csv,
        "user_id,first_name,city\nk-1,Anna,Zürich\nk-2,Ben,Bern\nk-3,Clara,ZUERICH\n",
    )
    .expect("csv");
    cli(
        dir.path(),
        &[
            "import",
            "customers",
            csv.to_str().expect("path"),
            "--source",
            "crm",
        ],
    );
    let definitions = dir.path().join("segments.yaml");
    std::fs::write(
        &definitions,
        "segments:\n  - id: zurich\n    name: Customers in Zürich\n    condition: { path: trait.city, eq: Zürich, ignore_case: true }\n",
    )
    .expect("yaml");
    let preview_file = dir.path().join("preview.yaml");
    std::fs::write(
        &preview_file,
        "id: bern\ncondition: { path: trait.city, eq: Bern }\n",
    )
    .expect("yaml");
    let preview = cli(
        dir.path(),
        &["segment", "preview", preview_file.to_str().expect("path")],
    );
    assert!(preview.starts_with("exactly 1 of 3 profiles"), "{preview}");

    let applied = cli(
        dir.path(),
        &["segment", "apply", definitions.to_str().expect("path")],
    );
    assert!(
        applied.contains("zurich") && applied.contains("created"),
        "{applied}"
    );
    let listed = cli(dir.path(), &["segment", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("zurich") && l.contains(" 2 ")),
        "{listed}"
    );
    let exported = cli(
        dir.path(),
        &["segment", "export", "zurich", "--traits", "first_name,city"],
    );
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines[0], "profile_id,first_name,city");
    assert_eq!(lines.len(), 3, "{exported}");
    assert!(
        lines[1..].iter().any(|l| l.ends_with(",Anna,Zürich")),
        "{exported}"
    );

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "segments:\n  - id: x\n    condition: { path: trait.city, equals: Bern }\n",
    )
    .expect("yaml");
    let out = cli_output(
        dir.path(),
        &["segment", "apply", broken.to_str().expect("path")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("segments[0].condition"), "{stderr}");
}
