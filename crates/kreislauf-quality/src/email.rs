//! E-mail addresses: a practical RFC 5321/5322 syntax check, normalisation, typo suggestions for
//! the common DACH and global mail providers, and a disposable-domain flag.
//!
//! Why: a mistyped domain (`gmial.com`, `gmx.dee`) loses a customer for every campaign, and
//! throw-away addresses inflate the customer count. Both stay usable (status `Suspicious`) so
//! nothing is dropped silently; the suggestion is for a person to confirm.
//!
//! The normalised value keeps the local part as written (RFC 5321 lets a server treat it as
//! case-sensitive) and lower-cases the domain; [`matching_key`] lower-cases everything for
//! record linkage. Non-ASCII letters are accepted in both parts (RFC 6531, IDN: `müller.de`).
//! Quoted local parts and IP-address domains are rejected: real customers do not have them.

use strsim::{jaro_winkler, osa_distance};
use unicode_normalization::UnicodeNormalization;

use crate::{Country, FieldOutcome};

const MAX_LOCAL: usize = 64;
const MAX_ADDRESS: usize = 254;
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// Checks and normalises an e-mail address.
///
/// Details: `matching_key` (the address lower-cased) and `disposable` (bool).
pub fn validate(raw: &str) -> FieldOutcome {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return FieldOutcome::blank(raw);
    }
    let value = match normalise(trimmed) {
        Ok(value) => value,
        Err(reason) => return FieldOutcome::invalid(raw, reason),
    };
    let domain = value.rsplit_once('@').map_or("", |(_, domain)| domain);
    let disposable = disposable_domain(domain);
    let key = value.to_lowercase();
    let mut outcome = FieldOutcome::usable(raw, value.clone())
        .detail("matching_key", key)
        .detail("disposable", disposable.is_some());
    if let Some(disposable) = disposable {
        outcome = outcome.suspect(format!("disposable e-mail domain {disposable}"));
    } else if let Some(fixed) = suggest_domain(domain) {
        let local = value.rsplit_once('@').map_or("", |(local, _)| local);
        outcome = outcome.suspect(format!("domain {domain} looks like a typo of {fixed}"));
        outcome.suggestion = Some(format!("{local}@{fixed}"));
    }
    outcome
}

/// The address fully lower-cased, for record linkage; `None` when it is missing or invalid.
pub fn matching_key(raw: &str) -> Option<String> {
    validate(raw).value.map(|value| value.to_lowercase())
}

/// True when the domain (or a parent domain) belongs to a known disposable-mail provider.
pub fn is_disposable(domain: &str) -> bool {
    disposable_domain(&domain.trim().to_lowercase()).is_some()
}

fn normalise(trimmed: &str) -> Result<String, String> {
    let mut s: String = trimmed.nfc().collect();
    if s.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
    {
        s = s.get(7..).unwrap_or_default().to_owned();
    }
    if let Some(inner) = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        s = inner.to_owned();
    }
    if s.chars().any(char::is_whitespace) {
        return Err("contains spaces".into());
    }
    if s.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    let (local, domain) = match s.matches('@').count() {
        0 => return Err("missing @".into()),
        1 => s.split_once('@').unwrap_or_default(),
        _ => return Err("more than one @".into()),
    };
    check_local(local)?;
    let domain: String = domain.to_lowercase().nfc().collect();
    check_domain(&domain)?;
    let value = format!("{local}@{domain}");
    if value.len() > MAX_ADDRESS {
        return Err("address longer than 254 characters".into());
    }
    Ok(value)
}

fn check_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("local part is empty".into());
    }
    if local.starts_with('"') {
        return Err("quoted local parts are not supported".into());
    }
    if local.len() > MAX_LOCAL {
        return Err("local part longer than 64 characters".into());
    }
    if local.starts_with('.') || local.ends_with('.') {
        return Err("local part starts or ends with a dot".into());
    }
    if local.contains("..") {
        return Err("consecutive dots".into());
    }
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    match local
        .chars()
        .find(|c| !(c.is_alphanumeric() || SPECIALS.contains(*c)))
    {
        Some(c) => Err(format!("invalid character {c:?} in local part")),
        None => Ok(()),
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("domain is empty".into());
    }
    if domain.starts_with('[') {
        return Err("ip address domains are not accepted".into());
    }
    if domain.len() > MAX_DOMAIN {
        return Err("domain longer than 253 characters".into());
    }
    if domain.starts_with('.') || domain.ends_with('.') {
        return Err("domain starts or ends with a dot".into());
    }
    if domain.contains("..") {
        return Err("consecutive dots".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("domain has no dot".into());
    }
    for label in &labels {
        if label.len() > MAX_LABEL {
            return Err("domain label longer than 63 characters".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("domain label starts or ends with a hyphen".into());
        }
        if let Some(c) = label.chars().find(|c| !(c.is_alphanumeric() || *c == '-')) {
            return Err(format!("invalid character {c:?} in domain"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    let letters = tld.chars().all(char::is_alphabetic) && tld.chars().count() >= 2;
    if !(letters || tld.starts_with("xn--")) {
        return Err("top-level domain must be at least two letters".into());
    }
    Ok(())
}

/// Mail providers customers in DACH use most, plus the big global ones. Typos are measured
/// against these.
const PROVIDERS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "gmx.de",
    "gmx.ch",
    "gmx.at",
    "gmx.net",
    "gmx.com",
    "gmx.li",
    "web.de",
    "t-online.de",
    "freenet.de",
    "posteo.de",
    "mailbox.org",
    "arcor.de",
    "online.de",
    "vodafone.de",
    "email.de",
    "mail.de",
    "bluewin.ch",
    "bluemail.ch",
    "hispeed.ch",
    "sunrise.ch",
    "swissonline.ch",
    "yahoo.com",
    "yahoo.de",
    "yahoo.fr",
    "yahoo.it",
    "ymail.com",
    "hotmail.com",
    "hotmail.de",
    "hotmail.ch",
    "hotmail.fr",
    "hotmail.it",
    "outlook.com",
    "outlook.de",
    "live.com",
    "live.de",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "aon.at",
    "a1.net",
    "chello.at",
    "protonmail.com",
    "protonmail.ch",
    "proton.me",
    "tutanota.com",
    "orange.fr",
    "free.fr",
    "libero.it",
];

/// Domains that are not typos by edit distance but are common mistakes.
const KNOWN_MISTAKES: &[(&str, &str)] = &[
    ("gmail.de", "gmail.com"),
    ("gmail.ch", "gmail.com"),
    ("gmail.at", "gmail.com"),
    ("gmail.co", "gmail.com"),
    ("googlemail.de", "googlemail.com"),
];

/// Top-level domains that do not exist and are one slip away from a common one.
const TLD_TYPOS: &[(&str, &str)] = &[
    ("con", "com"),
    ("cmo", "com"),
    ("ocm", "com"),
    ("vom", "com"),
    ("xom", "com"),
    ("cpm", "com"),
    ("clm", "com"),
    ("comm", "com"),
    ("coom", "com"),
    ("copm", "com"),
    ("dee", "de"),
    ("dde", "de"),
    ("ded", "de"),
    ("chh", "ch"),
    ("cch", "ch"),
    ("hc", "ch"),
    ("att", "at"),
    ("aat", "at"),
    ("nte", "net"),
    ("nett", "net"),
    ("ner", "net"),
    ("orgg", "org"),
    ("ogr", "org"),
];

/// Three-letter generic top-level domains in common use. Two-letter ones are the ISO country
/// codes; longer ones (`.swiss`, `.email`, `.berlin`, …) are too many to list and count as real.
const GENERIC_TLDS: &[&str] = &[
    "app", "art", "bio", "biz", "cat", "com", "dev", "edu", "eus", "fun", "gov", "int", "law",
    "ltd", "med", "mil", "net", "one", "org", "pro", "red", "ski", "tel", "top", "vip", "win",
    "xyz",
];

/// Whether a top-level domain plausibly exists (ISO country code, common generic, or longer).
fn is_known_tld(tld: &str) -> bool {
    if TLD_TYPOS.iter().any(|(wrong, _)| *wrong == tld) {
        return false;
    }
    match tld.chars().count() {
        0 | 1 => false,
        2 => tld == "uk" || Country::from_code(tld).is_some(),
        3 => GENERIC_TLDS.contains(&tld),
        _ => true,
    }
}

/// A likely intended domain for a mistyped one, or `None`.
fn suggest_domain(domain: &str) -> Option<String> {
    if PROVIDERS.contains(&domain) {
        return None;
    }
    if let Some((_, fixed)) = KNOWN_MISTAKES.iter().find(|(wrong, _)| *wrong == domain) {
        return Some((*fixed).to_owned());
    }
    let (name, tld) = domain.rsplit_once('.')?;

    // A top-level domain that does not exist: `.con` → `.com`.
    let tld_fixed = TLD_TYPOS
        .iter()
        .find(|(wrong, _)| *wrong == tld)
        .map(|(_, right)| format!("{name}.{right}"));

    // The provider name is right, the top-level domain does not exist: `gmx.dee` → `gmx.de`.
    if tld_fixed.is_none() && !is_known_tld(tld) {
        let same_name = PROVIDERS
            .iter()
            .filter_map(|p| p.rsplit_once('.').map(|(n, t)| (*p, n, t)))
            .filter(|(_, n, _)| *n == name)
            .map(|(p, _, t)| (osa_distance(tld, t), p))
            .filter(|(distance, _)| *distance <= 2)
            .min();
        if let Some((_, provider)) = same_name {
            return Some(provider.to_owned());
        }
    }

    let candidate = tld_fixed.as_deref().unwrap_or(domain);
    if PROVIDERS.contains(&candidate) {
        return Some(candidate.to_owned());
    }

    // A slip in the provider name: `gmial.com` → `gmail.com`. With a real top-level domain
    // only providers under the same one count (`hotmail.at` is not a typo of `hotmail.it`).
    let candidate_tld = candidate.rsplit_once('.').map_or("", |(_, t)| t);
    let any_tld = !is_known_tld(candidate_tld);
    let close = PROVIDERS
        .iter()
        .filter(|p| any_tld || p.rsplit_once('.').is_some_and(|(_, t)| t == candidate_tld))
        .map(|p| (osa_distance(candidate, p), jaro_winkler(candidate, p), *p))
        .filter(|(distance, similarity, p)| {
            let limit = if p.len() >= 10 { 2 } else { 1 };
            *distance <= limit && *similarity >= 0.85 && !short_name_clash(candidate, p)
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    if let Some((_, _, provider)) = close {
        return Some(provider.to_owned());
    }
    tld_fixed
}

/// Names of three letters or fewer (`aol`, `gmx`, `web`) are one slip away from many real
/// domains (`aon.com`, `gmc.com`), so for them only a swap of letters counts as a typo
/// (`gxm.de`, `wbe.de`).
fn short_name_clash(candidate: &str, provider: &str) -> bool {
    let name = |domain: &str| {
        let mut chars: Vec<char> = domain
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .collect();
        chars.sort_unstable();
        chars
    };
    let provider_name = name(provider);
    provider_name.len() <= 3 && name(candidate) != provider_name
}

/// The listed disposable domain the given (lower-case) domain is or belongs to.
fn disposable_domain(domain: &str) -> Option<&'static str> {
    DISPOSABLE.iter().copied().find(|d| {
        domain == *d
            || domain
                .strip_suffix(d)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

/// Well-known disposable ("throw-away") mail providers.
const DISPOSABLE: &[&str] = &[
    "mailinator.com",
    "mailinator.net",
    "10minutemail.com",
    "10minutemail.net",
    "20minutemail.com",
    "guerrillamail.com",
    "guerrillamail.net",
    "guerrillamail.org",
    "guerrillamail.de",
    "guerrillamailblock.com",
    "sharklasers.com",
    "grr.la",
    "trashmail.com",
    "trashmail.de",
    "trashmail.net",
    "trash-mail.com",
    "wegwerfmail.de",
    "wegwerfmail.net",
    "wegwerfmail.org",
    "wegwerfemail.de",
    "einwegmail.de",
    "muellmail.com",
    "sofort-mail.de",
    "byom.de",
    "spamgourmet.com",
    "spambog.com",
    "spam4.me",
    "yopmail.com",
    "yopmail.fr",
    "yopmail.net",
    "temp-mail.org",
    "temp-mail.io",
    "tempmail.net",
    "tempr.email",
    "tempinbox.com",
    "throwawaymail.com",
    "getnada.com",
    "dispostable.com",
    "maildrop.cc",
    "mailnesia.com",
    "mintemail.com",
    "mytemp.email",
    "fakeinbox.com",
    "discard.email",
    "emailondeck.com",
    "mohmal.com",
    "mailcatch.com",
    "mailexpire.com",
    "jetable.org",
    "anonbox.net",
    "0815.ru",
    "burnermail.io",
    "harakirimail.com",
    "inboxkitten.com",
    "tmpmail.org",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldStatus;

    /// `expected`: `Ok(value)` for a usable address, `Err(reason)` for an invalid one.
    fn check(input: &str, expected: Result<&str, &str>) {
        let outcome = validate(input);
        match expected {
            Ok(value) => assert_eq!(
                outcome.value.as_deref(),
                Some(value),
                "{input:?}: {outcome:?}"
            ),
            Err(reason) => assert_eq!(
                outcome.status,
                FieldStatus::Invalid {
                    reason: reason.to_owned()
                },
                "{input:?}"
            ),
        }
    }

    fn check_typo(input: &str, suggestion: &str, reason: &str) {
        let outcome = validate(input);
        assert_eq!(outcome.suggestion.as_deref(), Some(suggestion), "{input:?}");
        assert_eq!(outcome.status.reason(), Some(reason), "{input:?}");
    }

    #[test]
    fn accepts_and_normalises() {
        check("hans.muster@example.ch", Ok("hans.muster@example.ch"));
        check("  Hans.Muster@Example.CH ", Ok("Hans.Muster@example.ch"));
        check("mailto:anna@bluewin.ch", Ok("anna@bluewin.ch"));
        check("<anna@bluewin.ch>", Ok("anna@bluewin.ch"));
        check("o'brien+shop@t-online.de", Ok("o'brien+shop@t-online.de"));
        check("jürg.müller@müller.ch", Ok("jürg.müller@müller.ch"));
        check("a@b.co", Ok("a@b.co"));
        assert_eq!(validate("anna@bluewin.ch").status, FieldStatus::Valid);
        assert_eq!(validate("Anna@Bluewin.ch").status, FieldStatus::Normalised);
    }

    #[test]
    fn rejects_bad_syntax() {
        assert_eq!(validate("   ").status, FieldStatus::Missing);
        check("hans muster@example.ch", Err("contains spaces"));
        check("hans.example.ch", Err("missing @"));
        check("a@b@example.ch", Err("more than one @"));
        check("@example.ch", Err("local part is empty"));
        check(
            ".hans@example.ch",
            Err("local part starts or ends with a dot"),
        );
        check(
            "hans.@example.ch",
            Err("local part starts or ends with a dot"),
        );
        check("hans..muster@example.ch", Err("consecutive dots"));
        check("hans@example..ch", Err("consecutive dots"));
        check("hans@.example.ch", Err("domain starts or ends with a dot"));
        check("hans@example.ch.", Err("domain starts or ends with a dot"));
        check("hans@localhost", Err("domain has no dot"));
        check(
            "hans@example.c",
            Err("top-level domain must be at least two letters"),
        );
        check(
            "hans@example.123",
            Err("top-level domain must be at least two letters"),
        );
        check(
            "hans@-example.ch",
            Err("domain label starts or ends with a hyphen"),
        );
        check("hans@exa_mple.ch", Err("invalid character '_' in domain"));
        check(
            "hans,muster@example.ch",
            Err("invalid character ',' in local part"),
        );
        check("\"hans muster\"@example.ch", Err("contains spaces"));
        check(
            "\"hans\"@example.ch",
            Err("quoted local parts are not supported"),
        );
        check(
            "hans@[192.168.0.1]",
            Err("ip address domains are not accepted"),
        );
        let long_local = format!("{}@example.ch", "a".repeat(65));
        check(&long_local, Err("local part longer than 64 characters"));
        let long = format!(
            "{}@{}.{}.{}.ch",
            "a".repeat(64),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(60)
        );
        check(&long, Err("address longer than 254 characters"));
    }

    #[test]
    fn suggests_provider_typos() {
        check_typo(
            "hans@gmial.com",
            "hans@gmail.com",
            "domain gmial.com looks like a typo of gmail.com",
        );
        check_typo(
            "Hans@GMX.DEE",
            "Hans@gmx.de",
            "domain gmx.dee looks like a typo of gmx.de",
        );
        check_typo(
            "a@gmail.con",
            "a@gmail.com",
            "domain gmail.con looks like a typo of gmail.com",
        );
        check_typo(
            "a@gmail.cmo",
            "a@gmail.com",
            "domain gmail.cmo looks like a typo of gmail.com",
        );
        check_typo(
            "a@gmial.con",
            "a@gmail.com",
            "domain gmial.con looks like a typo of gmail.com",
        );
        check_typo(
            "a@bluewin.chh",
            "a@bluewin.ch",
            "domain bluewin.chh looks like a typo of bluewin.ch",
        );
        check_typo(
            "a@hotmial.de",
            "a@hotmail.de",
            "domain hotmial.de looks like a typo of hotmail.de",
        );
        check_typo(
            "a@googelmail.com",
            "a@googlemail.com",
            "domain googelmail.com looks like a typo of googlemail.com",
        );
        check_typo(
            "a@t-onlin.de",
            "a@t-online.de",
            "domain t-onlin.de looks like a typo of t-online.de",
        );
        check_typo(
            "a@gmail.de",
            "a@gmail.com",
            "domain gmail.de looks like a typo of gmail.com",
        );
        check_typo(
            "a@gxm.de",
            "a@gmx.de",
            "domain gxm.de looks like a typo of gmx.de",
        );
        check_typo(
            "a@wbe.de",
            "a@web.de",
            "domain wbe.de looks like a typo of web.de",
        );
        check_typo(
            "a@web.ed",
            "a@web.de",
            "domain web.ed looks like a typo of web.de",
        );
        check_typo(
            "a@example.con",
            "a@example.com",
            "domain example.con looks like a typo of example.com",
        );
    }

    #[test]
    fn leaves_real_domains_alone() {
        for input in [
            "a@gmx.ch",
            "a@gmx.at",
            "a@gmx.net",
            "a@web.de",
            "a@aon.at",
            "a@a1.net",
            "a@migros.ch",
            "a@coop.ch",
            "a@kreislauf.example",
            "a@sbb.ch",
            "a@post.ch",
            "a@hotmail.at",
            "a@gmx.swiss",
            "a@aon.com",
            "a@gmc.com",
            "a@wed.de",
        ] {
            let outcome = validate(input);
            assert!(outcome.suggestion.is_none(), "{input}: {outcome:?}");
            assert_eq!(outcome.status, FieldStatus::Valid, "{input}");
        }
    }

    #[test]
    fn flags_disposable_domains() {
        let outcome = validate("x@Mailinator.com");
        assert_eq!(
            outcome.status.reason(),
            Some("disposable e-mail domain mailinator.com")
        );
        assert_eq!(outcome.details["disposable"], true);
        assert!(is_disposable("wegwerfmail.de"));
        assert!(is_disposable("inbox.trashmail.com"));
        assert!(!is_disposable("nottrashmail.com"));
        assert!(!is_disposable("gmx.ch"));
    }

    #[test]
    fn matching_key_is_lower_case() {
        assert_eq!(
            matching_key(" Hans.Muster@Example.CH"),
            Some("hans.muster@example.ch".to_owned())
        );
        assert_eq!(matching_key("no address"), None);
        assert_eq!(
            validate("Hans@gmx.ch").details["matching_key"],
            "hans@gmx.ch"
        );
    }
}
