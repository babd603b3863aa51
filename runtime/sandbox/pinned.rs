//! The test-bed versions pinned in `scripts/versions.env`, compiled in, so the
//! scripts that build the binaries and the sandbox that runs them agree.

const VERSIONS_ENV: &str = include_str!("../../scripts/versions.env");

/// The value of `KEY=value` in `scripts/versions.env` (comments after `#` dropped).
pub fn pinned(key: &str) -> &'static str {
    lookup(VERSIONS_ENV, key).unwrap_or_else(|| panic!("scripts/versions.env has no {key}"))
}

fn lookup<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.split('#').next().unwrap_or("").trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_without_their_comments() {
        assert_eq!(lookup("A=1   # one\nB=v2\n", "A"), Some("1"));
        assert_eq!(lookup("A=1\nB=v2\n", "B"), Some("v2"));
        assert_eq!(lookup("A=1\n", "C"), None);
    }

    #[test]
    fn every_key_the_sandbox_uses_is_pinned() {
        for key in [
            "KUBE_VERSION",
            "ETCD_VERSION",
            "KUBE_OLDEST_VERSION",
            "ETCD_OLDEST_VERSION",
            "ISTIO_MODULE",
            "KWOK_VERSION",
        ] {
            assert!(!pinned(key).is_empty(), "{key}");
        }
        assert_eq!(pinned("KUBE_VERSION"), super::super::assets::CURRENT_VERSION);
        assert_eq!(pinned("KUBE_OLDEST_VERSION"), super::super::assets::OLDEST_VERSION);
    }
}
