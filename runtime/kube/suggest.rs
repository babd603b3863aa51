//! "Did you mean …?": served resource names a mistyped one resembles, by
//! edit distance (adjacent swaps count as one edit, as people type them).

/// The names in `served` within a small edit distance of `typed`, closest
/// first, at most three. Case-insensitive; short names need a closer match.
pub fn closest<'a>(typed: &str, served: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let typed = typed.to_ascii_lowercase();
    let limit = if typed.chars().count() <= 4 { 1 } else { 2 };
    let mut found: Vec<(usize, String)> = served
        .into_iter()
        .filter(|name| !name.is_empty())
        .map(|name| name.to_ascii_lowercase())
        .map(|name| (distance(&typed, &name), name))
        .filter(|(d, _)| *d <= limit)
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.1 == b.1);
    found.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of adjacent characters each cost one.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_swaps_as_one_edit() {
        assert_eq!(distance("istio", "istio"), 0);
        assert_eq!(distance("istoi", "istio"), 1);
        assert_eq!(distance("deploymnet", "deployment"), 1);
        assert_eq!(distance("svc", "sv"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("gadget", "gateway"), 5);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let served = ["istios", "istio", "Istio", "istiorevisions", "services", "svc", "gateways"];
        assert_eq!(closest("istoi", served), vec!["istio", "istios"]);
        assert_eq!(closest("istos", served), vec!["istios", "istio"]);
        assert_eq!(closest("svx", served), vec!["svc"]);
        assert!(closest("gadget", served).is_empty());
        assert!(closest("frobnicators", served).is_empty());
    }
}
