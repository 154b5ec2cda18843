//! `kreislauf demo`: a fresh embedded workspace of a fictional retail group (supermarket with loyalty
//! card, wine club, recipe site), events replayed through the real HTTP ingestion API, and the result.
//! Grows with every capability (journeys, recommendations, …: see the demo issue).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use kreislauf_core::{Identifier, IdentifierKind};
use kreislauf_store::NewSource;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::config::Settings;

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the demo's embedded store; emptied first.
    #[arg(long, default_value = "kreislauf-demo")]
    dir: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 2_000)]
    customers: u64,
    /// Random seed, for a reproducible replay.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Exit after the summary instead of serving.
    #[arg(long)]
    no_serve: bool,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

const WINES: &[(&str, &str, f64)] = &[
    ("PRO-DOC-BIO-075", "Prosecco DOC Bio, Treviso", 11.95),
    ("CRE-ALS-075", "Crémant d'Alsace Brut", 14.50),
    ("CAV-BRU-075", "Cava Brut Reserva", 9.90),
    ("FRA-SAT-075", "Franciacorta Satèn", 29.00),
];
const POSTCODES: &[(&str, &str)] = &[
    ("8001", "Zürich"),
    ("8004", "Zürich"),
    ("3011", "Bern"),
    ("4051", "Basel"),
    ("6003", "Luzern"),
    ("9000", "St. Gallen"),
    ("8400", "Winterthur"),
];
const STREETS: &[&str] = &[
    "Bahnhofstrasse",
    "Seestrasse",
    "Dorfstrasse",
    "Kirchgasse",
    "Schulweg",
    "Lindenallee",
];
const FIRST: &[&str] = &[
    "Hans", "Anna", "Lukas", "Sophie", "Jürg", "Mia", "Peter", "Léa", "Reto", "Sarah",
];
const LAST: &[&str] = &[
    "Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Fritsche", "Brunner", "Baumann",
    "Gerber",
];

pub async fn run(args: DemoArgs, settings: Settings) -> anyhow::Result<()> {
    if args.dir.exists() {
        let ours = args.dir.join("kreislauf.db").exists()
            || std::fs::read_dir(&args.dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        anyhow::ensure!(
            ours,
            "{} exists and is not a Kreislauf demo folder; choose another with --dir",
            args.dir.display()
        );
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot empty {}", args.dir.display()))?;
    }
    let settings = Settings {
        data_dir: args.dir.clone(),
        database_url: None,
        listen: args.listen,
        ..settings
    };
    let (store, _lock) = crate::open_writer(&settings).await?;
    let engine = crate::start_engine(&settings, store.clone()).await?;
    let mut keys = Vec::new();
    for (name, brand, channel) in [
        ("supermarket-pos", "supermarket", "point-of-sale"),
        ("wine-club-web", "wine-club", "web"),
        ("recipes-web", "recipe-site", "web"),
    ] {
        let (_, key) = engine
            .create_source(NewSource {
                name: name.into(),
                brand: brand.into(),
                channel: channel.into(),
                identity_mapping: Default::default(),
                allowed_origins: vec![],
            })
            .await?;
        keys.push(key.key);
    }
    let (_, token) = engine.create_token("demo").await?;
    let audiences = kreislauf_engine::audience::Audiences::start(engine.clone()).await?;
    audiences.apply(DEMO_AUDIENCES, "demo").await?;
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_engine = engine.clone();
    let server_audiences = audiences.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            tokio::select! { _ = stop_rx => {}, _ = crate::shutdown_signal() => {} }
        };
        kreislauf_server::serve(
            listener,
            kreislauf_server::AppState::with_audiences(server_engine, server_audiences),
            shutdown,
        )
        .await
    });

    // The story: people shop with the loyalty card at the till (anonymous till session + card number),
    // some are wine-club members (user id, e-mail, card), some read recipes (cookie id, later e-mail).
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let client = reqwest::Client::new();
    let base = chrono::Utc::now() - chrono::Duration::days(7);
    let mut batches: [Vec<Value>; 3] = Default::default();
    let bar = indicatif::ProgressBar::new(args.customers);
    bar.set_style(
        indicatif::ProgressStyle::with_template("replaying {bar:40} {pos}/{len} customers")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut sent = 0u64;
    for c in 0..args.customers {
        let card = format!("2501{c:08}");
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let last = LAST[rng.gen_range(0..LAST.len())];
        let email = format!(
            "{}.{}{c}@example.ch",
            first.to_lowercase(),
            last.to_lowercase().replace('ü', "ue")
        );
        let at = |rng: &mut rand::rngs::StdRng| {
            (base + chrono::Duration::minutes(rng.gen_range(0..7 * 24 * 60))).to_rfc3339()
        };
        let (sku, name, price) = WINES[if c == 0 {
            0
        } else {
            rng.gen_range(0..WINES.len())
        }];
        batches[0].push(json!({"type":"track","event":"Order Completed","anonymousId":format!("receipt-{c}-{}", rng.gen_range(0..1_000_000)),
            "messageId":format!("demo-pos-{c}"),"timestamp":at(&mut rng),
            "properties":{"loyalty_card":card,"order_id":format!("pos-{c}"),"currency":"CHF","revenue":price,
                "products":[{"sku":sku,"name":name,"category":"Schaumwein","price":price,"quantity":1}]}}));
        if c == 0 || rng.gen_bool(0.4) {
            // Real sign-up data is dirty: shouted names, mistyped domains, people who register twice.
            let shout = c != 0 && rng.gen_bool(0.08);
            let (first_t, last_t) = if shout {
                (first.to_uppercase(), last.to_uppercase())
            } else {
                (first.to_owned(), last.to_owned())
            };
            let club_email = if c != 0 && rng.gen_bool(0.06) {
                email.replace("@example.ch", "@gmial.com")
            } else {
                email.clone()
            };
            let (postcode, city) = POSTCODES[rng.gen_range(0..POSTCODES.len())];
            let birthday = format!(
                "{:02}.{:02}.{}",
                rng.gen_range(1..=28),
                rng.gen_range(1..=12),
                rng.gen_range(1950..2004)
            );
            let street = format!(
                "{} {}",
                STREETS[rng.gen_range(0..STREETS.len())],
                rng.gen_range(1..80)
            );
            let mobile = format!(
                "079 {} {:02} {:02}",
                rng.gen_range(100..999),
                rng.gen_range(0..100),
                rng.gen_range(0..100)
            );
            batches[1].push(json!({"type":"identify","userId":format!("wc-{c}"),"messageId":format!("demo-wc-{c}"),"timestamp":at(&mut rng),
                "traits":{"email":club_email,"first_name":first_t,"last_name":last_t,"loyalty_card":card,"salutation":"Herr","locale":"de-CH",
                    "consent":{"wine_club":{"email":{"marketing":c == 0 || rng.gen_bool(0.7)}}},
                    "birthday":birthday,"street":street,"postal_code":postcode,"city":city,"phone":mobile}}));
            if c != 0 && rng.gen_bool(0.05) {
                // The same person opens a second wine-club account with another address (no shared identifier).
                batches[1].push(json!({"type":"identify","userId":format!("wc-{c}-b"),"messageId":format!("demo-wc-{c}-b"),"timestamp":at(&mut rng),
                    "traits":{"email":format!("{}{c}@gmail.com", first.to_lowercase()),"first_name":first,"last_name":last,
                        "birthday":birthday,"street":street,"postal_code":postcode,"city":city}}));
            }
        }
        if c == 0 || rng.gen_bool(0.5) {
            let cookie = format!("rc-{c}");
            batches[2].push(json!({"type":"page","anonymousId":cookie,"name":"Risotto mit Spargel","messageId":format!("demo-rc-{c}-p"),"timestamp":at(&mut rng)}));
            if c == 0 || rng.gen_bool(0.5) {
                batches[2].push(json!({"type":"identify","anonymousId":cookie,"messageId":format!("demo-rc-{c}-i"),"timestamp":at(&mut rng),"traits":{"email":email,"newsletter":true}}));
            }
        }
        if batches.iter().map(Vec::len).sum::<usize>() >= 300 || c + 1 == args.customers {
            for (i, batch) in batches.iter_mut().enumerate() {
                if batch.is_empty() {
                    continue;
                }
                sent += batch.len() as u64;
                let response = client
                    .post(format!("http://{addr}/v1/batch"))
                    .basic_auth(&keys[i], Some(""))
                    .json(&json!({"batch": std::mem::take(batch), "sentAt": chrono::Utc::now().to_rfc3339()}))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == 200,
                    "ingestion answered {}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            bar.set_position(c + 1);
        }
    }
    bar.finish_and_clear();

    let stats = store.stats().await?;
    println!("Kreislauf demo — {} customers of a retail group, replayed through the Segment-compatible API", args.customers);
    println!(
        "  events ingested:   {sent} from 3 brands (supermarket till, wine club, recipe site)"
    );
    println!("  unified profiles:  {} (identities: {}) — loyalty card and e-mail tie the brands together", stats.profiles, stats.identities);
    let hero = store
        .profile_by_identifier(
            &Identifier::new(IdentifierKind::LoyaltyCard, "250100000000").context("demo card")?,
        )
        .await?
        .context("demo customer")?;
    let profile = store
        .profile(hero)
        .await?
        .context("demo customer profile")?;
    let timeline = store.timeline(hero, None, 20).await?;
    let trait_str = |k: &str| {
        profile
            .traits
            .get(k)
            .and_then(|t| t.value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    println!(
        "\nThe Prosecco buyer, profile {hero} ({} {}, {}):",
        trait_str("first_name"),
        trait_str("last_name"),
        trait_str("email")
    );
    for id in &profile.identities {
        println!("  identity  {:<13} {}", id.kind.as_str(), id.value);
    }
    let sources = store.sources().await?;
    for e in timeline.iter().rev() {
        let source = sources
            .iter()
            .find(|s| s.id == e.source_id)
            .map(|s| s.name.as_str())
            .unwrap_or("?");
        let segment = e
            .body
            .pointer("/properties/segment_id")
            .and_then(Value::as_str)
            .map(|id| format!("{} {id}", e.name.as_deref().unwrap_or("")));
        let what = segment.unwrap_or_else(|| {
            e.body
                .pointer("/properties/products/0/name")
                .and_then(Value::as_str)
                .or(e.name.as_deref())
                .unwrap_or("")
                .to_owned()
        });
        println!(
            "  {}  {:<15} {:<9} {}",
            e.timestamp.format("%a %d.%m. %H:%M"),
            source,
            e.kind,
            what
        );
    }
    println!(
        "  merges: {} (each reversible: POST /api/merges/{{id}}/revert)",
        store.merges(hero).await?.len()
    );
    let report = kreislauf_engine::quality::report(
        store.as_ref(),
        &kreislauf_engine::quality::ReportOptions::new(
            kreislauf_quality::Country::CH,
            chrono::Utc::now().date_naive(),
        ),
    )
    .await?;
    println!(
        "\nData quality (`kreislauf quality report` for all of it): average score {:.0}/100",
        report.average_score
    );
    for p in report.problems.iter().take(3) {
        let example = p.examples.first().map(|e| {
            let fix = e
                .suggestion
                .as_deref()
                .map(|s| format!(" → {s}"))
                .unwrap_or_default();
            format!(", e.g. {:?}{fix}", e.raw.as_deref().unwrap_or(""))
        });
        println!(
            "  {} {}: {} — {} profiles{}",
            p.field,
            p.status,
            p.reason,
            p.count,
            example.unwrap_or_default()
        );
    }
    let d = &report.duplicates;
    println!(
        "  likely duplicates: {} pairs to merge (p ≥ {:.2}), {} to review",
        d.likely, d.auto_merge_threshold, d.to_review
    );
    if let Some(pair) = d.examples.first() {
        let evidence: Vec<String> = pair
            .explanation
            .iter()
            .filter(|c| c.level.is_some())
            .map(|c| {
                format!(
                    "{} {} {:+.1} bits",
                    c.field,
                    c.level.as_deref().unwrap_or(""),
                    c.log2_bayes_factor
                )
            })
            .collect();
        println!(
            "  e.g. profiles {} and {} (p = {:.3}): {}",
            pair.profiles.0,
            pair.profiles.1,
            pair.probability,
            evidence.join(", ")
        );
    }
    audiences.catch_up().await?;
    println!(
        "\nSegments (`kreislauf segment list`), kept current as events arrive and time passes:"
    );
    for s in audiences.segments().await? {
        println!("  {:<22} {:>6} members  {}", s.id, s.members, s.name);
    }
    println!(
        "\nStore: {}   Admin token: {token}",
        settings.data_dir.join("kreislauf.db").display()
    );
    println!(
        "Try:   curl -H 'Authorization: Bearer {token}' http://{addr}/api/profiles/{hero}/timeline"
    );
    if args.no_serve {
        let _ = stop_tx.send(());
    } else {
        println!("Serving on http://{addr} — Ctrl-C to stop.");
    }
    server.await??;
    audiences.stop();
    engine.shutdown().await;
    let _ = Arc::clone(&store);
    Ok(())
}

/// The demo's computed traits and segments: the wine club's audience for the Prosecco story.
const DEMO_AUDIENCES: &str = r#"
computed_traits:
  - name: sparkling_purchases_30d
    aggregate: count
    events: [Order Completed]
    brands: [supermarket]
    where: { path: event.properties.products.0.category, eq: Schaumwein }
    window: 30d
  - name: lifetime_value_chf
    aggregate: sum
    of: event.properties.revenue
    events: [Order Completed]
    window: lifetime
  - name: recipe_views_30d
    aggregate: count
    events: [Risotto mit Spargel]
    brands: [recipe-site]
    window: 30d
segments:
  - id: sparkling-wine-club
    name: Sparkling-wine buyers (30 days) with wine-club e-mail consent
    condition:
      all:
        - { path: computed.sparkling_purchases_30d, ge: 1 }
        - { path: consent.wine_club.email.marketing, eq: true }
  - id: recipe-readers
    name: Read a recipe in the last 30 days
    condition: { path: computed.recipe_views_30d, ge: 1 }
  - id: cross-brand-foodies
    name: Sparkling-wine buyers who also read recipes
    condition:
      all:
        - { in_segment: sparkling-wine-club }
        - { in_segment: recipe-readers }
"#;
