//! The small pattern language of `matches`: `*` is any run of characters (also none), `?` is
//! exactly one character, everything else matches itself. No regular expressions, no escapes,
//! so evaluation is linear-ish and cannot blow up.

/// Whether `text` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` and the text position it is currently stretched to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((after_star, matched_to)) => {
                    pi = after_star;
                    ti = matched_to + 1;
                    star = Some((after_star, matched_to + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns() {
        assert!(glob_match("*@bluewin.ch", "anna@bluewin.ch"));
        assert!(!glob_match("*@bluewin.ch", "anna@bluewin.chx"));
        assert!(glob_match("80??", "8001"));
        assert!(!glob_match("80??", "801"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("Zü*", "Zürich"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }
}
