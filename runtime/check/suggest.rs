//! "Did you mean": the known name closest to a mistyped one, by edit
//! distance (a swap of two neighbours counts as one edit, as in `timout`;
//! the distance is the one `kube::suggest` ranks served kinds by).

use crate::kube::suggest::distance;

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
