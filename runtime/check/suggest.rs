//! "Did you mean": the known name closest to a mistyped one, by edit
//! distance (a swap of two neighbours counts as one edit, as in `timout`).

/// The closest of `known` to `name`, if it is close enough to be the intent:
/// at most a third of the name's length in edits (at least one).
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .into_iter()
        .filter(|k| *k != name)
        .map(|k| (distance(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, k)| (*d, k.len()))
        .map(|(_, k)| k)
}

/// `; did you mean "x"?` or nothing.
pub fn hint<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, known).map(|k| format!("; did you mean \"{k}\"?")).unwrap_or_default()
}

/// Optimal string alignment distance (Damerau-Levenshtein without re-edits).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name() {
        let keys = ["for", "wait_for", "timeout", "namespace", "fail_if"];
        assert_eq!(closest("timout", keys), Some("timeout"));
        assert_eq!(closest("tiemout", keys), Some("timeout"));
        assert_eq!(closest("namespce", keys), Some("namespace"));
        assert_eq!(closest("Namespace", keys), Some("namespace"));
        assert_eq!(closest("selector", keys), None);
        assert_eq!(closest("data-plane2", ["control-plane", "data-plane-2"]), Some("data-plane-2"));
        assert_eq!(
            hint("wait_redy", ["wait_ready", "wait_data_plane"]),
            "; did you mean \"wait_ready\"?"
        );
        assert_eq!(hint("x", ["timeout"]), "");
    }
}
