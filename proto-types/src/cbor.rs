//! Deterministic CBOR (RFC 8949 §4.2.1) for everything Rogatory signs or hashes.
//!
//! Encoding goes through [`ciborium::Value`], written by this module's own encoder: every map is
//! sorted by the bytewise order of its encoded keys, integers and lengths take their shortest
//! form, and lengths are always definite. Floating-point values are refused: no Rogatory schema has one.
//!
//! Decoding is strict. The input must be exactly one CBOR data item, no larger than the caller's
//! limit, and it must be the deterministic encoding of the value it decodes to: the decoded value
//! is encoded again and the two byte strings compared. That one comparison refuses
//! non-deterministic encodings, indefinite lengths, duplicate or unknown map keys and fields the
//! schema omits when absent, so each value has exactly one accepted encoding.

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Nesting limit for decoded CBOR: far deeper than any Rogatory schema, far shallower than the stack.
pub const MAX_DEPTH: usize = 48;

/// Why CBOR could not be decoded. Every variant is the fault of whoever produced the bytes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the limit the caller set.
    #[error("{what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not well-formed CBOR (or are truncated).
    #[error("{what} is not well-formed CBOR: {detail}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// Bytes follow the single data item.
    #[error("{what} has {extra} unexpected bytes after its end")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// Well-formed CBOR that does not fit the schema.
    #[error("{what} does not match its schema: {detail}")]
    Schema {
        /// What was being decoded.
        what: &'static str,
        /// What did not fit.
        detail: String,
    },
    /// The value fits the schema, but these are not its deterministic encoding.
    #[error("{what} is not in deterministic CBOR encoding (RFC 8949 §4.2.1){at}")]
    NotDeterministic {
        /// What was being decoded.
        what: &'static str,
        /// Where the first difference is, when it can be told.
        at: String,
    },
}

/// Why a value could not be encoded. Always a bug in the caller or this crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value contains something deterministic CBOR here does not allow (a float).
    #[error("value cannot be encoded deterministically: {0}")]
    Unsupported(String),
    /// serde or ciborium refused the value.
    #[error("value cannot be encoded: {0}")]
    Serde(String),
}

/// Encodes `value` in deterministic CBOR.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let value = Value::serialized(value).map_err(|e| EncodeError::Serde(e.to_string()))?;
    value_to_vec(value)
}

/// Encodes an already built [`Value`] in deterministic CBOR (maps are sorted here).
pub fn value_to_vec(value: Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode(&value, &mut out)?;
    Ok(out)
}

/// Writes a data item's head: its major type and argument, in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if let Ok(a) = u8::try_from(arg) {
        out.extend_from_slice(&[m | 24, a]);
    } else if let Ok(a) = u16::try_from(arg) {
        out.push(m | 25);
        out.extend_from_slice(&a.to_be_bytes());
    } else if let Ok(a) = u32::try_from(arg) {
        out.push(m | 26);
        out.extend_from_slice(&a.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Writes `value` in deterministic encoding: shortest heads, definite lengths, each map's
/// entries in the bytewise order of their encoded keys (equal keys kept in their order, as
/// [`canonicalize`] does), no floats. Gives the bytes [`canonicalize`] and ciborium give,
/// without rebuilding the value.
fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            let (major, arg) = if i >= 0 { (0, i) } else { (1, -1 - i) };
            let arg = u64::try_from(arg).map_err(|_| {
                EncodeError::Unsupported(format!("the integer {i} needs more than 64 bits"))
            })?;
            head(out, major, arg);
        }
        Value::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            head(out, 3, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for v in items {
                encode(v, out)?;
            }
        }
        Value::Map(entries) => {
            head(out, 5, entries.len() as u64);
            if let [(k, v)] = entries.as_slice() {
                encode(k, out)?;
                encode(v, out)?;
            } else {
                // Each entry encoded once, then written in the order of its key's bytes.
                let mut scratch = Vec::new();
                let mut spans = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let start = scratch.len();
                    encode(k, &mut scratch)?;
                    let key_end = scratch.len();
                    encode(v, &mut scratch)?;
                    spans.push((start, key_end, scratch.len()));
                }
                spans.sort_by(|a, b| scratch[a.0..a.1].cmp(&scratch[b.0..b.1]));
                for (start, _, end) in spans {
                    out.extend_from_slice(&scratch[start..end]);
                }
            }
        }
        Value::Tag(tag, inner) => {
            head(out, 6, *tag);
            encode(inner, out)?;
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Float(_) => {
            return Err(EncodeError::Unsupported(
                "floating-point numbers are not used".into(),
            ));
        }
        other => {
            return Err(EncodeError::Unsupported(format!(
                "{other:?} has no deterministic encoding here"
            )));
        }
    }
    Ok(())
}

/// Sorts every map by encoded key, recursively, and refuses floats.
pub fn canonicalize(value: Value) -> Result<Value, EncodeError> {
    Ok(match value {
        Value::Float(_) => {
            return Err(EncodeError::Unsupported(
                "floating-point numbers are not used".into(),
            ));
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(canonicalize)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let mut keyed = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = canonicalize(k)?;
                    let mut enc = Vec::new();
                    ciborium::into_writer(&k, &mut enc)
                        .map_err(|e| EncodeError::Serde(e.to_string()))?;
                    Ok((enc, k, canonicalize(v)?))
                })
                .collect::<Result<Vec<_>, EncodeError>>()?;
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner)?)),
        other => other,
    })
}

/// Parses exactly one CBOR data item of at most `limit` bytes into a [`Value`].
///
/// This checks well-formedness, depth and trailing bytes, not determinism.
pub fn parse_value(bytes: &[u8], limit: usize, what: &'static str) -> Result<Value, DecodeError> {
    decode_one(bytes, limit, what)
}

/// Decodes exactly one data item of at most `limit` bytes as a `T` (not checking determinism).
fn decode_one<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }
    let mut reader = bytes;
    let value: T = ciborium::de::from_reader_with_recursion_limit(&mut reader, MAX_DEPTH).map_err(
        |e| match e {
            ciborium::de::Error::Semantic(..) => DecodeError::Schema {
                what,
                detail: describe_de_error(&e),
            },
            _ => DecodeError::Malformed {
                what,
                detail: describe_de_error(&e),
            },
        },
    )?;
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: reader.len(),
        });
    }
    Ok(value)
}

/// Decodes `bytes` as a `T`, requiring that they are the deterministic encoding of that `T`.
pub fn from_slice<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    let decoded: T = decode_one(bytes, limit, what)?;
    let again = to_vec(&decoded).map_err(|e| DecodeError::Schema {
        what,
        detail: e.to_string(),
    })?;
    if again != bytes {
        let expected = Value::serialized(&decoded)
            .ok()
            .and_then(|v| canonicalize(v).ok());
        let at = match expected {
            Some(expected) => parse_value(bytes, limit, what)
                .ok()
                .and_then(|value| first_difference(&value, &expected, &mut String::new()))
                .map(|p| format!(" at `{p}`"))
                .unwrap_or_default(),
            None => String::new(),
        };
        return Err(DecodeError::NotDeterministic { what, at });
    }
    Ok(decoded)
}

/// Finds the path of the first place where `got` and `want` differ, for error messages.
fn first_difference(got: &Value, want: &Value, path: &mut String) -> Option<String> {
    match (got, want) {
        (Value::Map(g), Value::Map(w)) => {
            for (k, v) in g {
                let name = key_name(k);
                match w.iter().find(|(wk, _)| wk == k) {
                    None => return Some(join(path, &name) + " (not part of the schema)"),
                    Some((_, wv)) => {
                        let mut sub = join(path, &name);
                        if let Some(p) = first_difference(v, wv, &mut sub) {
                            return Some(p);
                        }
                    }
                }
            }
            for (k, _) in w {
                if !g.iter().any(|(gk, _)| gk == k) {
                    return Some(join(path, &key_name(k)) + " (missing)");
                }
            }
            if g.iter().map(|(k, _)| k).ne(w.iter().map(|(k, _)| k)) {
                return Some(format!("{} (map keys out of order)", display_path(path)));
            }
            None
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                let mut sub = format!("{path}[{i}]");
                if let Some(p) = first_difference(gv, wv, &mut sub) {
                    return Some(p);
                }
            }
            None
        }
        (g, w) if g == w => None,
        _ => Some(display_path(path)),
    }
}

fn key_name(k: &Value) -> String {
    match k {
        Value::Text(t) => t.clone(),
        Value::Integer(i) => i128::from(*i).to_string(),
        other => format!("{other:?}"),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(top level)".into()
    } else {
        path.to_string()
    }
}

fn describe_de_error<E: std::fmt::Debug>(e: &ciborium::de::Error<E>) -> String {
    match e {
        ciborium::de::Error::Io(_) => "input ends before the data item does (truncated)".into(),
        ciborium::de::Error::Syntax(off) => format!("syntax error at byte {off}"),
        ciborium::de::Error::Semantic(off, msg) => match off {
            Some(off) => format!("{msg} at byte {off}"),
            None => msg.clone(),
        },
        ciborium::de::Error::RecursionLimitExceeded => {
            format!("nested deeper than {MAX_DEPTH} levels")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Sample {
        zebra: u32,
        a: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        opt: Option<u8>,
    }

    /// The encoder writes the bytes ciborium writes for the canonicalized value, for values of
    /// every kind, at every head-length boundary, nested, with maps of mixed keys.
    #[test]
    fn the_encoder_writes_what_ciborium_writes_for_the_sorted_value() {
        fn oracle(v: &Value) -> Vec<u8> {
            let mut out = Vec::new();
            ciborium::into_writer(&canonicalize(v.clone()).unwrap(), &mut out).unwrap();
            out
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const INTS: [i128; 14] = [
            0,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            4_294_967_295,
            4_294_967_296,
            u64::MAX as i128,
            -1,
            -24,
            -25,
            -(1i128 << 64),
        ];
        const LENS: [usize; 6] = [0, 23, 24, 255, 256, 70_000];
        fn build(next: &mut dyn FnMut() -> u64, depth: u32) -> Value {
            let pick = next() % if depth > 3 { 6 } else { 9 };
            let len = LENS[(next() % LENS.len() as u64) as usize];
            match pick {
                0 => Value::Integer(
                    INTS[(next() % INTS.len() as u64) as usize]
                        .try_into()
                        .unwrap(),
                ),
                1 => Value::Integer(((next() >> 8) as i64).into()),
                2 => Value::Bytes(vec![next() as u8; len]),
                3 => Value::Text("é".repeat(len / 2)),
                4 => Value::Bool(next().is_multiple_of(2)),
                5 => Value::Null,
                6 => Value::Array((0..next() % 30).map(|_| build(next, depth + 1)).collect()),
                7 => Value::Map(
                    (0..next() % 30)
                        .map(|_| (build(next, depth + 2), build(next, depth + 1)))
                        .collect(),
                ),
                _ => Value::Tag(next() % 70_000, Box::new(build(next, depth + 1))),
            }
        }
        for _ in 0..500 {
            let v = build(&mut next, 0);
            assert_eq!(value_to_vec(v.clone()).unwrap(), oracle(&v), "{v:?}");
        }
        assert!(value_to_vec(Value::Float(0.5)).is_err());
    }

    #[test]
    fn maps_are_sorted_by_encoded_key() {
        let bytes = to_vec(&Sample {
            zebra: 1,
            a: "x".into(),
            opt: None,
        })
        .unwrap();
        // {"a": "x", "zebra": 1}: the one-letter key sorts first.
        assert_eq!(hex::encode(&bytes), "a261616178657a6562726101");
    }

    #[test]
    fn strict_decoding_refuses_other_encodings() {
        let good = to_vec(&Sample {
            zebra: 1,
            a: "x".into(),
            opt: None,
        })
        .unwrap();
        assert!(from_slice::<Sample>(&good, 100, "sample").is_ok());

        // Keys out of order.
        let unsorted = hex::decode("a2657a656272610161616178").unwrap();
        let err = from_slice::<Sample>(&unsorted, 100, "sample").unwrap_err();
        assert!(matches!(err, DecodeError::NotDeterministic { .. }), "{err}");

        // A non-shortest integer (0x18 0x01 for 1).
        let long_int = hex::decode("a261616178657a656272611801").unwrap();
        assert!(matches!(
            from_slice::<Sample>(&long_int, 100, "sample"),
            Err(DecodeError::NotDeterministic { .. })
        ));

        // An unknown field.
        let unknown = hex::decode("a3616161786362616401657a6562726101").unwrap();
        let err = from_slice::<Sample>(&unknown, 100, "sample").unwrap_err();
        assert!(err.to_string().contains("not part of the schema"), "{err}");

        // Trailing bytes, truncation, oversize.
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            from_slice::<Sample>(&trailing, 100, "sample"),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
        assert!(matches!(
            from_slice::<Sample>(&good[..good.len() - 1], 100, "sample"),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            from_slice::<Sample>(&good, 4, "sample"),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut bytes = vec![0x81; 10_000];
        bytes.push(0x00);
        assert!(matches!(
            parse_value(&bytes, usize::MAX, "deep"),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn floats_are_refused() {
        assert!(matches!(to_vec(&1.5f64), Err(EncodeError::Unsupported(_))));
    }
}
