//! A small well-formedness check for the SVG mesh-run draws: one root,
//! every tag closed in order, attributes quoted, entities known. Enough to
//! catch broken escaping or nesting without an XML dependency.

pub fn check_well_formed(xml: &str) -> Result<(), String> {
    let body = match xml.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").ok_or("unterminated XML declaration")? + 2..],
        None => xml,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open])?;
        if stack.is_empty() && !rest[..open].trim().is_empty() {
            return Err(format!("text outside the root: {:?}", &rest[..open]));
        }
        let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(top) if top == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
            return Err(format!("bad tag name in <{tag}>"));
        }
        check_attributes(&tag[name.len()..])?;
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() {
        return Err(format!("unclosed: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

fn check_attributes(mut s: &str) -> Result<(), String> {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(());
        }
        let eq = s.find('=').ok_or_else(|| format!("attribute without value: {s}"))?;
        let quote = s[eq + 1..].chars().next().ok_or("attribute without value")?;
        if quote != '"' && quote != '\'' {
            return Err(format!("unquoted attribute: {s}"));
        }
        let value_start = eq + 2;
        let end = s[value_start..].find(quote).ok_or("unterminated attribute")? + value_start;
        let value = &s[value_start..end];
        if value.contains('<') {
            return Err(format!("'<' in attribute value {value}"));
        }
        check_text(value)?;
        s = &s[end + 1..];
    }
}

fn check_text(s: &str) -> Result<(), String> {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        let end = rest[amp..].find(';').ok_or_else(|| format!("bare '&' in {s:?}"))? + amp;
        let entity = &rest[amp + 1..end];
        let known = ["amp", "lt", "gt", "quot", "apos"].contains(&entity) || entity.starts_with('#');
        if !known {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &rest[end + 1..];
    }
    Ok(())
}

#[test]
fn the_checker_rejects_what_it_should() {
    assert!(check_well_formed("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><text>a &amp; b</text></g><rect/></svg>\n").is_ok());
    assert!(check_well_formed("<svg><g></svg></g>").is_err());
    assert!(check_well_formed("<svg a=1></svg>").is_err());
    assert!(check_well_formed("<svg>a & b</svg>").is_err());
    assert!(check_well_formed("<svg></svg><svg></svg>").is_err());
    assert!(check_well_formed("<svg><text>x<</text></svg>").is_err());
}
