//! Matching a typed word against a fixed vocabulary (statuses, impacts, component statuses).
//! An officer under pressure types `Resolved`, `in-progress` or `resovled`: case, `-` and spaces
//! do not matter, and a near miss gets "did you mean …", so the API and the CLI answer alike.

/// The canonical form a word is compared in: trimmed, lower-case, `-` and spaces as `_`.
fn canonical(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Levenshtein distance over characters (the words are short: two rows suffice).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Finds `s` among `names` (each in canonical form). `Err` carries the closest name when it is
/// a plausible typo: at most 2 edits, and fewer than half the word's length.
pub(crate) fn find<'a>(s: &str, names: &[&'a str]) -> Result<&'a str, Option<&'a str>> {
    let c = canonical(s);
    if let Some(n) = names.iter().find(|n| **n == c) {
        return Ok(n);
    }
    let best = names
        .iter()
        .map(|n| (distance(&c, n), *n))
        .min_by_key(|(d, _)| *d);
    Err(best
        .filter(|(d, n)| *d <= 2 && *d * 2 < n.len().max(c.len()))
        .map(|(_, n)| n))
}

/// ` Did you mean "x"?` or nothing, for the end of an error message.
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|n| format!(" Did you mean \"{n}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["resolved", "in_progress", "monitoring"];

    #[test]
    fn case_dashes_and_spaces_do_not_matter() {
        assert_eq!(find("Resolved", &NAMES), Ok("resolved"));
        assert_eq!(find(" IN-PROGRESS ", &NAMES), Ok("in_progress"));
        assert_eq!(find("in progress", &NAMES), Ok("in_progress"));
    }

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        assert_eq!(find("resovled", &NAMES), Err(Some("resolved")));
        assert_eq!(find("monitorng", &NAMES), Err(Some("monitoring")));
        assert_eq!(find("fixed", &NAMES), Err(None));
        assert_eq!(find("", &NAMES), Err(None));
        assert_eq!(
            did_you_mean(Some("resolved")),
            " Did you mean \"resolved\"?"
        );
        assert_eq!(did_you_mean(None), "");
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
    }
}
