//! Evaluates a parsed template against a JSON object, a port of client-go's
//! `util/jsonpath/jsonpath.go` with missing keys allowed (kubectl's default for
//! both `get -o jsonpath` and `wait --for=jsonpath`).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::go_format::GoNumber;
use super::parser::{Node, Segment, SliceParam};

/// One value flowing through the steps of an action.
#[derive(Debug, Clone)]
pub(super) enum Item<'a> {
    Borrowed(&'a Value),
    /// Quoted text, integer and boolean literals, and the bytes of a string under `.*`.
    Owned(Value),
    /// A float literal stays a Go `float64` even when integral, so `1.0` does not equal the integer 1.
    Float(f64),
    /// Go's invalid `reflect.Value`: what a `range` body sees for a null item (and,
    /// unprinted, for an empty range). `{@}` prints it as `<no value>`.
    NoValue,
}

impl Item<'_> {
    pub(super) fn value(&self) -> Cow<'_, Value> {
        match self {
            Item::Borrowed(value) => Cow::Borrowed(*value),
            Item::Owned(value) => Cow::Borrowed(value),
            Item::Float(float) => Cow::Owned(Value::from(*float)),
            Item::NoValue => Cow::Owned(Value::Null),
        }
    }
}

/// The `range`/`end` bookkeeping of client-go, which runs ranges by re-entering
/// `find_results` on the segments after the `range` and stopping at the `end`.
pub(super) struct Evaluator<'t> {
    segments: &'t [Segment],
    begin_range: usize,
    in_range: usize,
    end_range: usize,
    last_end: Option<usize>,
}

pub(super) type EvalResult<T> = Result<T, String>;

impl<'t> Evaluator<'t> {
    pub(super) fn new(segments: &'t [Segment]) -> Self {
        Evaluator {
            segments,
            begin_range: 0,
            in_range: 0,
            end_range: 0,
            last_end: None,
        }
    }

    /// One list of results per segment evaluated, in output order.
    pub(super) fn find_results<'a>(&mut self, start: usize, data: Item<'a>) -> EvalResult<Vec<Vec<Item<'a>>>> {
        let mut full = Vec::new();
        let mut i = start;
        while i < self.segments.len() {
            let results = match &self.segments[i] {
                Segment::Text(text) => vec![Item::Owned(Value::String(text.clone()))],
                Segment::Action(nodes) => self.eval_list(vec![data.clone()], nodes)?,
            };
            if self.end_range > 0 && self.end_range <= self.in_range {
                self.end_range -= 1;
                self.last_end = Some(i);
                break;
            }
            if self.begin_range > 0 {
                self.begin_range -= 1;
                self.in_range += 1;
                if results.is_empty() {
                    // Still walk the body, so that the matching `end` is found.
                    self.find_results(i + 1, Item::NoValue)?;
                }
                for item in results {
                    // client-go re-enters with `value.Interface()`, which turns null into no value.
                    let data = if let Item::Borrowed(Value::Null) = item {
                        Item::NoValue
                    } else {
                        item
                    };
                    full.extend(self.find_results(i + 1, data)?);
                }
                self.in_range -= 1;
                // Resume after the body's `end`; without one, kubectl evaluates the
                // body once more against the outer data, and so do we.
                if let Some(end) = self.last_end.filter(|&end| end > i) {
                    i = end;
                }
                i += 1;
                continue;
            }
            full.push(results);
            i += 1;
        }
        Ok(full)
    }

    fn eval_list<'a>(&mut self, mut items: Vec<Item<'a>>, nodes: &[Node]) -> EvalResult<Vec<Item<'a>>> {
        for node in nodes {
            items = self.walk(items, node)?;
        }
        Ok(items)
    }

    fn walk<'a>(&mut self, input: Vec<Item<'a>>, node: &Node) -> EvalResult<Vec<Item<'a>>> {
        let literal = |item: Item<'a>| vec![item; input.len()];
        Ok(match node {
            Node::Text(text) => vec![Item::Owned(Value::String(text.clone()))],
            Node::Int(int) => literal(Item::Owned(Value::from(*int))),
            Node::Float(float) => literal(Item::Float(*float)),
            Node::Bool(b) => literal(Item::Owned(Value::Bool(*b))),
            Node::Field(name) => input.iter().filter_map(|item| field(item, name)).collect(),
            Node::Array(params) => {
                let mut results = Vec::new();
                for item in &input {
                    results.extend(slice(item, *params)?);
                }
                results
            }
            Node::Filter { left, operator, right } => self.filter(&input, left, operator, right)?,
            Node::Wildcard => input.iter().flat_map(children).collect(),
            Node::Recursive => {
                let mut results = Vec::new();
                descend(input, &mut results);
                results
            }
            Node::Union(members) => {
                let mut results = Vec::new();
                for member in members {
                    results.extend(self.eval_list(input.clone(), member)?);
                }
                results
            }
            Node::Identifier(word) => match word.as_str() {
                "range" => {
                    self.begin_range += 1;
                    input
                }
                "end" if self.in_range > 0 => {
                    self.end_range += 1;
                    Vec::new()
                }
                "end" => return Err("not in range, nothing to end".into()),
                _ => return Err(format!("unrecognized identifier {word}")),
            },
        })
    }

    fn filter<'a>(&mut self, input: &[Item<'a>], left: &[Node], operator: &str, right: &[Node]) -> EvalResult<Vec<Item<'a>>> {
        let mut results = Vec::new();
        for item in input {
            let elements = match (item, &*item.value()) {
                (Item::NoValue, _) => {
                    return Err("<invalid reflect.Value> is not array or slice and cannot be filtered".into());
                }
                (_, Value::Array(_)) => children(item),
                (_, other) => {
                    return Err(format!("{} is not array or slice and cannot be filtered", go_print(other)));
                }
            };
            for element in elements {
                let lefts = self.eval_list(vec![element.clone()], left);
                if operator == "exists" {
                    // client-go tests `len(lefts) > 0` even on error, and its failing
                    // steps hand back their (non-empty) input: an error counts as present.
                    if lefts.map_or(true, |found| !found.is_empty()) {
                        results.push(element);
                    }
                    continue;
                }
                let Some(left_value) = single(lefts?)? else {
                    continue;
                };
                let Some(right_value) = single(self.eval_list(vec![element.clone()], right)?)? else {
                    continue;
                };
                if compare(&left_value, operator, &right_value)? {
                    results.push(element);
                }
            }
        }
        Ok(results)
    }
}

fn single(items: Vec<Item<'_>>) -> EvalResult<Option<Item<'_>>> {
    match items.len() {
        0 => Ok(None),
        1 => Ok(items.into_iter().next()),
        _ => Err("can only compare one element at a time".into()),
    }
}

fn field<'a>(item: &Item<'a>, name: &str) -> Option<Item<'a>> {
    match item {
        Item::Borrowed(Value::Object(map)) => map.get(name).map(Item::Borrowed),
        _ => None, // literals are never maps
    }
}

/// What `.*` and `..` step into: map values (sorted by key; Go's map order is
/// random, so kubectl's own order varies from run to run), list elements, and
/// the bytes of a string, as numbers.
fn children<'a>(item: &Item<'a>) -> Vec<Item<'a>> {
    let string_bytes = |s: &str| s.bytes().map(|b| Item::Owned(Value::from(b))).collect();
    let Item::Borrowed(value) = item else {
        // Literals are scalars; only a quoted string has children.
        return match &*item.value() {
            Value::String(s) => string_bytes(s),
            _ => Vec::new(),
        };
    };
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries.into_iter().map(|(_, v)| Item::Borrowed(v)).collect()
        }
        Value::Array(items) => items.iter().map(Item::Borrowed).collect(),
        Value::String(s) => string_bytes(s),
        _ => Vec::new(),
    }
}

/// Pre-order: each value that has children, then its descendants. Scalars and
/// empty containers are left out, as in client-go.
fn descend<'a>(input: Vec<Item<'a>>, out: &mut Vec<Item<'a>>) {
    for item in input {
        let below = children(&item);
        if !below.is_empty() {
            out.push(item);
            descend(below, out);
        }
    }
}

fn slice<'a>(item: &Item<'a>, mut params: [SliceParam; 3]) -> EvalResult<Vec<Item<'a>>> {
    let len = match &*item.value() {
        // kubectl panics here; failing is the closest we can do.
        _ if matches!(item, Item::NoValue) => return Err("cannot index a missing value".into()),
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.len() as i64,
        other => return Err(format!("{} is not array or slice", go_type(other))),
    };
    let [start, end, step] = &mut params;
    if !start.known {
        start.value = 0;
    }
    if start.value < 0 {
        start.value += len;
    }
    if !end.known {
        end.value = len;
    }
    if end.value < 0 || (end.value == 0 && end.derived) {
        end.value += len;
    }
    if end.value == start.value {
        return Ok(Vec::new());
    }
    if start.value >= len || start.value < 0 {
        return Err(format!("array index out of bounds: index {}, length {len}", start.value));
    }
    if end.value > len || end.value < 0 {
        return Err(format!("array index out of bounds: index {}, length {len}", end.value - 1));
    }
    if start.value > end.value {
        return Err(format!("starting index {} is greater than ending index {}", start.value, end.value));
    }
    let step = match step.known {
        true if step.value <= 0 => return Err("step must be > 0".into()),
        true => step.value as usize,
        false => 1,
    };
    let elements = children(item);
    Ok(elements
        .into_iter()
        .skip(start.value as usize)
        .take((end.value - start.value) as usize)
        .step_by(step)
        .collect())
}

/// Go's comparison kinds (text/template's `basicKind`); null, maps and lists have none.
#[derive(PartialEq)]
enum Scalar<'v> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'v str),
}

fn scalar<'v>(item: &Item<'_>, value: &'v Value) -> EvalResult<Scalar<'v>> {
    Ok(match (item, value) {
        (Item::Float(float), _) => Scalar::Float(*float),
        (_, Value::Bool(b)) => Scalar::Bool(*b),
        (_, Value::Number(n)) => match GoNumber::of(n) {
            GoNumber::Int(int) => Scalar::Int(int),
            GoNumber::Float(float) => Scalar::Float(float),
        },
        (_, Value::String(s)) => Scalar::Str(s),
        _ => return Err("invalid type for comparison".into()),
    })
}

/// text/template's `eq`, `ne`, `lt`, `le`, `gt`, `ge`: only the same kinds
/// compare (an integer never equals a float), and booleans only for equality.
fn compare(left: &Item<'_>, operator: &str, right: &Item<'_>) -> EvalResult<bool> {
    let (left_value, right_value) = (left.value(), right.value());
    let (a, b) = (scalar(left, &left_value)?, scalar(right, &right_value)?);
    let ordering = match (&a, &b) {
        (Scalar::Int(x), Scalar::Int(y)) => x.partial_cmp(y),
        (Scalar::Float(x), Scalar::Float(y)) => x.partial_cmp(y),
        (Scalar::Str(x), Scalar::Str(y)) => x.partial_cmp(y),
        (Scalar::Bool(_), Scalar::Bool(_)) => None,
        _ => return Err("incompatible types for comparison".into()),
    };
    let ordered = || ordering.ok_or_else(|| String::from("invalid type for comparison"));
    Ok(match operator {
        "==" => a == b,
        "!=" => a != b,
        "<" => ordered()? == Ordering::Less,
        "<=" => ordered()? != Ordering::Greater,
        ">" => ordered()? == Ordering::Greater,
        ">=" => ordered()? != Ordering::Less,
        _ => return Err(format!("unrecognized filter operator {operator}")),
    })
}

/// The Go type name client-go puts in "is not array or slice" errors.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) => match GoNumber::of(n) {
            GoNumber::Int(_) => "int64",
            GoNumber::Float(_) => "float64",
        },
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a value, close enough for error messages.
fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => GoNumber::of(n).to_text(),
        other => other.to_string(),
    }
}
