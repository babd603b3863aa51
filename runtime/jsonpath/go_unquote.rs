//! Go's `strconv.Unquote`, which client-go applies to the quoted text of a
//! template (`{"\n"}`, `{'\t'}`), extended to single quotes as its
//! `UnquoteExtend` is. Returns `None` where Go reports "invalid syntax".

/// `quoted` includes its quotes, `"..."` or `'...'`.
pub(super) fn unquote(quoted: &str) -> Option<String> {
    let mut chars = quoted.chars();
    let quote = chars.next()?;
    let inner = chars.as_str().strip_suffix(quote)?;
    let mut bytes = Vec::new();
    let mut rest = inner.chars();
    while let Some(c) = rest.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        let simple = match rest.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            c @ ('\'' | '"') if c == quote => c,
            c @ ('x' | 'u' | 'U') => {
                let width = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = rest.by_ref().take(width).collect();
                let valid = hex.len() == width && hex.chars().all(|h| h.is_ascii_hexdigit());
                let code = u32::from_str_radix(&hex, 16).ok().filter(|_| valid)?;
                if c == 'x' {
                    bytes.push(code as u8); // a raw byte, as Go allows
                    continue;
                }
                char::from_u32(code)?
            }
            c @ '0'..='7' => {
                let octal: String = std::iter::once(c).chain(rest.by_ref().take(2)).collect();
                bytes.push(u8::try_from(u32::from_str_radix(&octal, 8).ok().filter(|_| octal.len() == 3)?).ok()?);
                continue;
            }
            _ => return None,
        };
        bytes.extend_from_slice(simple.encode_utf8(&mut [0; 4]).as_bytes());
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn follows_go_escapes() {
        assert_eq!(unquote(r#""a\tb\n""#).as_deref(), Some("a\tb\n"));
        assert_eq!(unquote(r#"'\t'"#).as_deref(), Some("\t"));
        assert_eq!(unquote(r#""\u00e9\x41\101""#).as_deref(), Some("éAA"));
        assert_eq!(unquote(r#""a\"b""#).as_deref(), Some("a\"b"));
        // A quote escaped inside the other kind of quotes, and unknown escapes, are errors in Go.
        assert_eq!(unquote(r#""\'""#), None);
        assert_eq!(unquote(r#""\q""#), None);
        assert_eq!(unquote(r#""\400""#), None);
    }
}
