//! End-to-end behaviour of the recommendation API on the hand-made world.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use kreislauf_recs::{
    InteractionKind, Item, ItemKey, Model, ModelBuilder, ReasonKind, Recommendation,
    RecommenderHandle, Request, Strategy,
};

fn model() -> Model {
    let mut builder = ModelBuilder::new(catalogs()).with_rules(rules()).unwrap();
    builder.add_interactions(&interactions());
    builder.build()
}

fn ids(recommendations: &[Recommendation]) -> Vec<&str> {
    recommendations
        .iter()
        .map(|rec| rec.item.id.as_str())
        .collect()
}

fn prosecco() -> ItemKey {
    ItemKey::new("wines", "prosecco")
}

fn rule_ids(rec: &Recommendation) -> Vec<&str> {
    rec.reasons
        .iter()
        .filter_map(|reason| match &reason.kind {
            ReasonKind::PairingRule { rule_id, .. } => Some(rule_id.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn prosecco_pairing_suggests_antipasti_vegetable_italian_recipes_with_rule_reasons() {
    let model = model();
    for strategy in [Strategy::Pairing, Strategy::Blend] {
        let request = Request::for_item(prosecco(), strategy, 2).target("recipes");
        let recs = model.recommend(&request).unwrap();
        assert_eq!(recs.len(), 2, "{strategy}: {recs:?}");
        for rec in &recs {
            assert!(
                ["bruschetta", "vitello", "spargelrisotto", "pilzrisotto"]
                    .contains(&rec.item.id.as_str()),
                "{strategy}: unexpected {}",
                rec.item
            );
            assert!(
                !rule_ids(rec).is_empty(),
                "{strategy}: no rule reason for {}",
                rec.item
            );
        }
        assert_eq!(
            recs[0].item.id,
            "bruschetta",
            "{strategy}: {:?}",
            ids(&recs)
        );
        assert!(recs[0].score >= recs[1].score);
    }
    let recs = model
        .recommend(&Request::for_item(prosecco(), Strategy::Pairing, 2).target("recipes"))
        .unwrap();
    let first = &recs[0];
    assert!(
        rule_ids(first).contains(&"sparkling-antipasti"),
        "{first:?}"
    );
    let reason = first
        .reasons
        .iter()
        .find(|reason| matches!(&reason.kind, ReasonKind::PairingRule { rule_id, .. } if rule_id == "sparkling-antipasti"))
        .unwrap();
    match &reason.kind {
        ReasonKind::PairingRule {
            anchor,
            from_attribute,
            from_value,
            to_attribute,
            to_value,
            ..
        } => {
            assert_eq!(anchor, &prosecco());
            assert_eq!(
                (from_attribute.as_str(), from_value.as_str()),
                ("type", "sparkling")
            );
            assert_eq!(
                (to_attribute.as_str(), to_value.as_str()),
                ("course", "antipasti")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Contributions add up to the score for a pure pairing result.
    let sum: f64 = first.reasons.iter().map(|reason| reason.contribution).sum();
    assert!((sum - first.score).abs() < 1e-4, "{sum} vs {}", first.score);
    assert!(reason.summary().contains("sparkling-antipasti"));
}

#[test]
fn red_wine_pairs_with_beef_and_negative_rule_pushes_fish_down() {
    let model = model();
    let recs = model
        .recommend(
            &Request::for_item(ItemKey::new("wines", "barolo"), Strategy::Pairing, 10)
                .target("recipes"),
        )
        .unwrap();
    assert_eq!(recs[0].item.id, "schmorbraten");
    // Vitello tonnato: +0.6 Italian, −0.7 fish → net negative → never suggested by rules.
    assert!(
        !ids(&recs[..recs.iter().filter(|rec| !rule_ids(rec).is_empty()).count()])
            .contains(&"vitello")
    );
}

#[test]
fn recently_sent_and_excluded_items_are_skipped() {
    let model = model();
    let request = Request::for_item(prosecco(), Strategy::Pairing, 2)
        .target("recipes")
        .recently_sent([ItemKey::new("recipes", "bruschetta")]);
    let recs = model.recommend(&request).unwrap();
    assert!(!ids(&recs).contains(&"bruschetta"), "{:?}", ids(&recs));
    assert_eq!(recs.len(), 2);
    let request = request.excluding([ItemKey::new("recipes", "vitello")]);
    let recs = model.recommend(&request).unwrap();
    assert!(!ids(&recs).contains(&"vitello") && !ids(&recs).contains(&"bruschetta"));
}

#[test]
fn unavailable_items_never_come_back() {
    let model = model();
    for strategy in Strategy::ALL {
        for count in [1, 5, 20] {
            let recs = model
                .recommend(&Request::for_item(prosecco(), strategy, count))
                .unwrap();
            assert!(
                !ids(&recs).contains(&"caprese"),
                "{strategy}: {:?}",
                ids(&recs)
            );
            let recs = model
                .recommend(&Request::for_item(prosecco(), strategy, count).target("recipes"))
                .unwrap();
            assert!(
                !ids(&recs).contains(&"caprese"),
                "{strategy}: {:?}",
                ids(&recs)
            );
        }
    }
}

#[test]
fn results_are_unique_and_deterministic() {
    let first = model();
    let second = model();
    for strategy in Strategy::ALL {
        let request = Request::for_item(prosecco(), strategy, 20);
        let left = first.recommend(&request).unwrap();
        let right = second.recommend(&request).unwrap();
        assert_eq!(left, right, "{strategy}");
        assert_eq!(left, first.recommend(&request).unwrap(), "{strategy}");
        let mut keys: Vec<&ItemKey> = left.iter().map(|rec| &rec.item).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), left.len(), "{strategy}: duplicates");
        assert!(
            !left.iter().any(|rec| rec.item == prosecco()),
            "{strategy}: anchor returned"
        );
    }
}

#[test]
fn cross_sell_uses_learned_cooccurrence_into_another_catalog() {
    let model = model();
    let recs = model
        .recommend(&Request::for_item(prosecco(), Strategy::CrossSell, 3).target("deli"))
        .unwrap();
    assert_eq!(recs[0].item.id, "parmigiano", "{recs:?}");
    let cooc = recs[0]
        .reasons
        .iter()
        .find_map(|reason| match &reason.kind {
            ReasonKind::CoOccurrence {
                with,
                lift,
                support,
                ..
            } => Some((with.clone(), *lift, *support)),
            _ => None,
        })
        .unwrap();
    assert_eq!(cooc.0, prosecco());
    assert_eq!(cooc.2, 9);
    // 18 profiles; 12 bought Prosecco, 9 Parmigiano, 9 both: lift = 9*18/(12*9).
    assert!((cooc.1 - 1.5).abs() < 1e-3, "{cooc:?}");
    // Cross-sell never stays in the anchor's own category.
    let recs = model
        .recommend(&Request::for_item(prosecco(), Strategy::CrossSell, 10))
        .unwrap();
    let wines = model.item(&prosecco()).unwrap().categories.clone();
    for rec in &recs {
        if rec.item.catalog == "wines" {
            assert!(
                rec.reasons
                    .iter()
                    .all(|reason| matches!(reason.kind, ReasonKind::Popular(_)))
                    || {
                        let item = model.item(&rec.item).unwrap();
                        item.categories != wines
                    }
            );
        }
    }
}

#[test]
fn blend_combines_rules_behaviour_and_similarity() {
    let model = model();
    let recs = model
        .recommend(&Request::for_item(prosecco(), Strategy::Blend, 3).target("recipes"))
        .unwrap();
    let top = &recs[0];
    assert_eq!(top.item.id, "bruschetta");
    let kinds: Vec<&str> = top
        .reasons
        .iter()
        .map(|reason| match reason.kind {
            ReasonKind::PairingRule { .. } => "rule",
            ReasonKind::CoOccurrence { .. } => "cooc",
            ReasonKind::Similarity { .. } => "similar",
            ReasonKind::Popular(_) => "popular",
            ReasonKind::PriceStep { .. } => "price",
        })
        .collect();
    assert!(
        kinds.contains(&"rule") && kinds.contains(&"cooc"),
        "{kinds:?}"
    );
    let sum: f64 = top.reasons.iter().map(|reason| reason.contribution).sum();
    assert!((sum - top.score).abs() < 1e-3, "{sum} vs {}", top.score);
}

#[test]
fn up_sell_stays_in_category_and_price_band() {
    let model = model();
    let recs = model
        .recommend(&Request::for_item(prosecco(), Strategy::UpSell, 3))
        .unwrap();
    assert!(!recs.is_empty());
    let first = &recs[0];
    assert!(
        ["franciacorta", "cremant"].contains(&first.item.id.as_str()),
        "{recs:?}"
    );
    let price = first.price.unwrap();
    assert!(price > 11.9 * 1.05 && price <= 11.9 * 2.0, "{price}");
    assert!(first
        .reasons
        .iter()
        .any(|reason| matches!(reason.kind, ReasonKind::PriceStep { price_ratio, .. } if price_ratio > 1.0)));
    // The 79 € Champagne is outside the band: only as a popular fallback, if at all.
    for rec in &recs {
        if rec.item.id == "champagne" {
            assert!(rec
                .reasons
                .iter()
                .all(|reason| matches!(reason.kind, ReasonKind::Popular(_))));
        }
    }
}

#[test]
fn similar_uses_compound_decomposition() {
    let model = model();
    let recs = model
        .recommend(&Request::for_item(
            ItemKey::new("recipes", "spargelrisotto"),
            Strategy::Similar,
            1,
        ))
        .unwrap();
    assert_eq!(recs[0].item.id, "pilzrisotto", "{recs:?}");
    let terms = recs[0]
        .reasons
        .iter()
        .find_map(|reason| match &reason.kind {
            ReasonKind::Similarity { terms, .. } => Some(terms.clone()),
            _ => None,
        })
        .unwrap();
    assert!(!terms.is_empty());
    let hits = model
        .search("recipes", "Käse-Fondue mit Weißwein", 3)
        .unwrap();
    assert_eq!(hits[0].item.id, "fondue", "{hits:?}");
    let hits = model.search("recipes", "Spargel", 3).unwrap();
    assert_eq!(hits[0].item.id, "spargelrisotto", "{hits:?}");
}

#[test]
fn cold_start_falls_back_to_popular_in_category() {
    let model = model();
    // A profile without history asks for sparkling wines.
    let request = Request::for_profile(Vec::new(), Strategy::Blend, 2)
        .target("wines")
        .in_category("Schaumwein");
    let recs = model.recommend(&request).unwrap();
    assert_eq!(recs[0].item.id, "prosecco");
    match &recs[0].reasons[0].kind {
        ReasonKind::Popular(kreislauf_recs::PopularScope::Category { category, catalog }) => {
            assert_eq!(
                (catalog.as_str(), category.as_str()),
                ("wines", "Schaumwein")
            );
        }
        other => panic!("expected popular-in-category, got {other:?}"),
    }
    // An item nobody bought and no rule covers: popular items of its category.
    let recs = model
        .recommend(
            &Request::for_item(ItemKey::new("wines", "champagne"), Strategy::CrossSell, 2)
                .target("wines"),
        )
        .unwrap();
    assert!(!recs.is_empty());
    assert!(recs.iter().all(|rec| rec
        .reasons
        .iter()
        .any(|reason| matches!(reason.kind, ReasonKind::Popular(_)))));
}

#[test]
fn profile_history_drives_recommendations_and_excludes_purchases() {
    let model = model();
    let history = history(&[("wines", "prosecco", InteractionKind::Purchase, 40)]);
    let recs = model
        .recommend(&Request::for_profile(history, Strategy::Blend, 3))
        .unwrap();
    assert!(!ids(&recs).contains(&"prosecco"));
    assert!(
        ids(&recs).contains(&"bruschetta") || ids(&recs).contains(&"parmigiano"),
        "{:?}",
        ids(&recs)
    );
}

#[test]
fn invalid_requests_are_reported() {
    let model = model();
    let error = model
        .recommend(&Request::for_item(prosecco(), Strategy::Pairing, 0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("count"), "{error}");
    let error = model
        .recommend(&Request::for_item(
            ItemKey::new("wines", "nope"),
            Strategy::Pairing,
            2,
        ))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "unknown item \"nope\" in catalog \"wines\"");
    let error = model
        .recommend(&Request::for_item(prosecco(), Strategy::Pairing, 2).target("wein"))
        .unwrap_err()
        .to_string();
    assert_eq!(error, "unknown catalog \"wein\"");
    assert!("upsell".parse::<Strategy>().is_err());
    assert_eq!("up-sell".parse::<Strategy>().unwrap(), Strategy::UpSell);
}

#[test]
fn handle_publishes_catalog_updates_and_refreshes_without_breaking_readers() {
    let mut builder = ModelBuilder::new(catalogs()).with_rules(rules()).unwrap();
    builder.add_interactions(&interactions());
    let handle = RecommenderHandle::new(builder);
    let request = Request::for_item(prosecco(), Strategy::Pairing, 2).target("recipes");
    let old: Arc<Model> = handle.snapshot();
    assert_eq!(ids(&old.recommend(&request).unwrap())[0], "bruschetta");

    // Bruschetta sells out... well, the recipe page goes offline.
    let mut offline = old
        .item(&ItemKey::new("recipes", "bruschetta"))
        .unwrap()
        .clone();
    offline.available = false;
    handle.upsert_item("recipes", offline).unwrap();
    let recs = handle.recommend(&request).unwrap();
    assert!(!ids(&recs).contains(&"bruschetta"), "{:?}", ids(&recs));
    // The reader holding the old snapshot still gets its consistent answer.
    assert_eq!(ids(&old.recommend(&request).unwrap())[0], "bruschetta");

    // A new recipe is recommendable right away (text index rebuilt).
    handle
        .upsert_item(
            "recipes",
            common::recipe(
                "crostini",
                "Crostini mit Oliven",
                "Knusprige Crostini, italienische Antipasti",
                "antipasti",
                "italienisch",
                "vegetarisch",
                vec!["brot", "oliven"],
            ),
        )
        .unwrap();
    let recs = handle.recommend(&request).unwrap();
    assert_eq!(recs[0].item.id, "crostini", "{:?}", ids(&recs));
    // Deleting removes it again.
    assert!(handle.delete_item("recipes", "crostini").unwrap().is_some());
    assert!(!ids(&handle.recommend(&request).unwrap()).contains(&"crostini"));
    assert!(handle.delete_item("recipes", "crostini").unwrap().is_none());

    // New behaviour: after refresh, Riesling buyers' Fondue clicks are learned.
    let before = handle.snapshot();
    assert!(before
        .associations(&ItemKey::new("wines", "riesling"), 5)
        .is_empty());
    let fresh: Vec<_> = (0..5)
        .flat_map(|n| {
            let name = format!("r{n}");
            [
                interaction(&name, "wines", "riesling", InteractionKind::Purchase, 50),
                interaction(&name, "recipes", "fondue", InteractionKind::Click, 51),
            ]
        })
        .collect();
    handle.add_interactions(fresh);
    assert!(handle
        .snapshot()
        .associations(&ItemKey::new("wines", "riesling"), 5)
        .is_empty());
    let after = handle.refresh(None);
    let associations = after.associations(&ItemKey::new("wines", "riesling"), 5);
    assert_eq!(associations[0].item, ItemKey::new("recipes", "fondue"));
    assert_eq!(associations[0].support, 5);
    assert!(Arc::ptr_eq(&after, &handle.snapshot()));
    // Old snapshots keep working and keep their view.
    assert!(before
        .associations(&ItemKey::new("wines", "riesling"), 5)
        .is_empty());
    assert!(!before.recommend(&request).unwrap().is_empty());
    // Catalog state survived the refresh.
    assert!(!ids(&after.recommend(&request).unwrap()).contains(&"bruschetta"));
}

#[test]
fn readers_are_not_blocked_by_concurrent_refreshes() {
    let mut builder = ModelBuilder::new(catalogs()).with_rules(rules()).unwrap();
    builder.add_interactions(&interactions());
    let handle = Arc::new(RecommenderHandle::new(builder));
    let request = Request::for_item(prosecco(), Strategy::Blend, 2).target("recipes");
    std::thread::scope(|scope| {
        let writer = {
            let handle = Arc::clone(&handle);
            scope.spawn(move || {
                for round in 0..20 {
                    handle.add_interactions([interaction(
                        &format!("w{round}"),
                        "wines",
                        "riesling",
                        InteractionKind::View,
                        60,
                    )]);
                    handle.refresh(None);
                }
            })
        };
        for _ in 0..200 {
            let recs = handle.recommend(&request).unwrap();
            assert_eq!(recs.len(), 2);
            assert_eq!(recs[0].item.id, "bruschetta");
        }
        writer.join().unwrap();
    });
    assert_eq!(
        handle.snapshot().stats().interactions,
        interactions().len() + 20
    );
}

#[test]
fn items_upserted_later_keep_earlier_interactions() {
    let mut builder = ModelBuilder::new(catalogs()).with_rules(rules()).unwrap();
    let mut events = interactions();
    // Interactions for an item that is not yet in the catalog.
    for n in 0..4 {
        events.push(interaction(
            &format!("p{}", n + 1),
            "deli",
            "grissini",
            InteractionKind::Purchase,
            11 + n,
        ));
    }
    builder.add_interactions(&events);
    let handle = RecommenderHandle::new(builder);
    let request = Request::for_item(prosecco(), Strategy::CrossSell, 5).target("deli");
    assert!(!ids(&handle.recommend(&request).unwrap()).contains(&"grissini"));
    handle
        .upsert_item(
            "deli",
            Item::new("grissini", "Grissini Torinesi").with_category("Gebäck"),
        )
        .unwrap();
    let recs = handle.recommend(&request).unwrap();
    assert!(ids(&recs).contains(&"grissini"), "{:?}", ids(&recs));
}
