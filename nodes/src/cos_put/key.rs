//! Object keys: a template filled from a message's metadata, then sanitised.
//!
//! A template is text with `{field}` or `{field:argument}` holes (`{{` and
//! `}}` for literal braces). Fields:
//!
//! | field            | value                                                        |
//! |------------------|--------------------------------------------------------------|
//! | `prefix`         | the node's `prefix` setting                                  |
//! | `seq`            | the message's `seq` metadata, else the node's own counter    |
//! | `ext`            | file extension from the content type (`png`, `jpg`, `bin`…)  |
//! | `topic`          | the whole topic; its levels become folders                   |
//! | `topic.N`        | topic level N, from 0                                        |
//! | `source`, `frame`, `face` | those metadata values                               |
//! | `time:FORMAT`    | UTC time of `timestamp_ms` (else now): `%Y %m %d %H %M %S %3f %s %%` |
//! | `hash`, `hash:N` | SHA-256 of the payload in hex, or its first N digits         |
//! | `meta.NAME`      | any metadata value                                           |
//!
//! Every value is cleaned before it goes in (control characters and `\`
//! become `_`), and the finished key is cut into `/`-separated segments
//! where empty and `.` segments disappear and `..` becomes `__`: a key can
//! never be absolute or climb out of the filesystem root, whatever a
//! publisher puts in a topic.

use std::fmt::Write as _;

use flowrun_runtime::{Message, Payload};

use crate::frame::keys;
use sha2::{Digest, Sha256};

/// The longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// What a template hole asks for.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Prefix,
    Seq,
    Ext,
    Topic,
    TopicLevel(usize),
    Meta(String),
    Time(String),
    Hash(Option<usize>),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(Field),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

/// Why a template does not parse, or a key cannot be made for a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("unclosed `{{` at byte {0}")]
    Unclosed(usize),
    #[error("a lone `}}` at byte {0}: write `}}}}` for a literal brace")]
    LoneBrace(usize),
    #[error("unknown field `{{{0}}}`")]
    UnknownField(String),
    #[error("`{{{0}}}` takes a number")]
    BadNumber(String),
    #[error("the key template needs metadata `{name}`, which this message does not have (it has: {has})")]
    Missing { name: String, has: String },
    #[error("the key template leaves an empty key")]
    Empty,
    #[error("the key is {0} bytes long; object keys may have at most {MAX_KEY_BYTES}")]
    TooLong(usize),
}

/// Everything a key may be made from, besides the message itself.
pub struct KeyInput<'a> {
    pub prefix: &'a str,
    /// Used for `{seq}` when the message carries no `seq`.
    pub counter: u64,
    pub content_type: &'a str,
    /// Milliseconds since the epoch, for `{time}` when the message has no `timestamp_ms`.
    pub now_ms: i64,
}

impl KeyTemplate {
    pub fn parse(text: &str) -> Result<KeyTemplate, KeyError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(KeyError::LoneBrace(at)),
                '{' => {
                    let mut hole = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, c)) => hole.push(c),
                            None => return Err(KeyError::Unclosed(at)),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(parse_field(&hole)?));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(KeyTemplate { parts })
    }

    /// Whether the template reads the payload (so the hash must be computed).
    fn needs_hash(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Field(Field::Hash(_))))
    }

    /// The sanitised key for `message`.
    pub fn render(&self, message: &Message, input: &KeyInput<'_>) -> Result<String, KeyError> {
        let digest = self.needs_hash().then(|| {
            let data: &[u8] = match &message.payload {
                Payload::Bytes(bytes) => bytes,
                // Not fed to cos_put: validation lets only bytes in.
                Payload::Typed(_) => &[],
            };
            let mut hex = String::with_capacity(64);
            for byte in Sha256::digest(data) {
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        });
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => key.push_str(text),
                Part::Field(field) => {
                    let value = field_value(field, message, input, digest.as_deref())?;
                    // The time format is the spec author's, so its `/` make folders.
                    let keep_slashes = matches!(field, Field::Topic | Field::Time(_));
                    key.push_str(&clean_value(&value, keep_slashes));
                }
            }
        }
        sanitise(&key)
    }
}

fn parse_field(hole: &str) -> Result<Field, KeyError> {
    let (name, argument) = match hole.split_once(':') {
        Some((name, argument)) => (name, Some(argument)),
        None => (hole, None),
    };
    let number = |text: &str| {
        text.parse::<usize>()
            .map_err(|_| KeyError::BadNumber(hole.to_owned()))
    };
    Ok(match (name, argument) {
        ("prefix", None) => Field::Prefix,
        ("seq", None) => Field::Seq,
        ("ext", None) => Field::Ext,
        ("topic", None) => Field::Topic,
        ("source", None) => Field::Meta(keys::SOURCE.into()),
        ("frame", None) => Field::Meta(keys::FRAME.into()),
        ("face", None) => Field::Meta(keys::FACE.into()),
        ("time", format) => Field::Time(format.unwrap_or("%Y%m%dT%H%M%S%3fZ").to_owned()),
        ("hash", None) => Field::Hash(None),
        ("hash", Some(n)) => Field::Hash(Some(number(n)?)),
        (name, None) => match (name.strip_prefix("topic."), name.strip_prefix("meta.")) {
            (Some(level), _) => Field::TopicLevel(number(level)?),
            (_, Some(meta)) if !meta.is_empty() => Field::Meta(meta.to_owned()),
            _ => return Err(KeyError::UnknownField(hole.to_owned())),
        },
        _ => return Err(KeyError::UnknownField(hole.to_owned())),
    })
}

/// A missing field, with the metadata the message does carry: what a user
/// who guessed a name (`frame_index`) needs to pick the right one.
fn missing(name: String, message: &Message) -> KeyError {
    let names: Vec<&str> = message.meta.keys().map(String::as_str).collect();
    let has = if names.is_empty() {
        "no metadata".to_owned()
    } else {
        names.join(", ")
    };
    KeyError::Missing { name, has }
}

fn field_value(
    field: &Field,
    message: &Message,
    input: &KeyInput<'_>,
    digest: Option<&str>,
) -> Result<String, KeyError> {
    let meta = |key: &str| {
        message
            .meta_text(key)
            .ok_or_else(|| missing(key.to_owned(), message))
    };
    Ok(match field {
        Field::Prefix => input.prefix.to_owned(),
        Field::Seq => message
            .meta_text(keys::SEQ)
            .unwrap_or_else(|| input.counter.to_string()),
        Field::Ext => extension(input.content_type).to_owned(),
        Field::Topic => meta(keys::TOPIC)?,
        Field::TopicLevel(n) => meta(keys::TOPIC)?
            .split('/')
            .nth(*n)
            .map(str::to_owned)
            .ok_or_else(|| missing(format!("{}.{n}", keys::TOPIC), message))?,
        Field::Meta(key) => meta(key)?,
        Field::Time(format) => {
            let ms = match message.meta.get(keys::TIMESTAMP_MS) {
                Some(flowrun_runtime::MetaValue::Int(ms)) => *ms,
                _ => input.now_ms,
            };
            format_utc(ms, format)
        }
        Field::Hash(length) => {
            let digest = digest.unwrap_or_default();
            digest[..length.unwrap_or(digest.len()).min(digest.len())].to_owned()
        }
    })
}

/// The usual file extension for a MIME type.
pub fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "text/plain" => "txt",
        "application/json" => "json",
        _ => "bin",
    }
}

/// A value made safe to put in a key. Only `{topic}` and `{time}` keep
/// their `/` (folders); other values cannot add segments.
fn clean_value(value: &str, keep_slashes: bool) -> String {
    value
        .chars()
        .map(|c| match c {
            '/' if keep_slashes => '/',
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The finished key: relative, no `.` or `..` segment, no empty segment, no
/// control character, not too long.
pub fn sanitise(key: &str) -> Result<String, KeyError> {
    let segments: Vec<String> = key
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != ".")
        .map(|s| match s {
            ".." => "__".to_owned(),
            s => s
                .chars()
                .map(|c| if c.is_control() { '_' } else { c })
                .collect(),
        })
        .collect();
    let key = segments.join("/");
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(key.len()));
    }
    Ok(key)
}

/// `ms` since the epoch as UTC text, with a small `strftime` subset.
pub fn format_utc(ms: i64, format: &str) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{year:04}"),
            Some('m') => write!(out, "{month:02}"),
            Some('d') => write!(out, "{day:02}"),
            Some('H') => write!(out, "{:02}", of_day / 3600),
            Some('M') => write!(out, "{:02}", of_day / 60 % 60),
            Some('S') => write!(out, "{:02}", of_day % 60),
            Some('s') => write!(out, "{secs}"),
            Some('3') if chars.clone().next() == Some('f') => {
                chars.next();
                write!(out, "{millis:03}")
            }
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact over the whole proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use flowrun_runtime::Metadata;

    fn message(pairs: &[(&str, &str)]) -> Message {
        let mut meta = Metadata::new();
        for (k, v) in pairs {
            meta.insert((*k).into(), (*v).into());
        }
        Message::new(Payload::Bytes(Bytes::from_static(b"abc")), meta)
    }

    fn render(template: &str, message: &Message) -> Result<String, KeyError> {
        let input = KeyInput {
            prefix: "test",
            counter: 7,
            content_type: "image/png",
            now_ms: 0,
        };
        KeyTemplate::parse(template)?.render(message, &input)
    }

    #[test]
    fn the_default_template_gives_the_original_names() {
        let with_seq = message(&[("seq", "41")]);
        assert_eq!(
            render("{prefix}{seq}.{ext}", &with_seq).unwrap(),
            "test41.png"
        );
        with_seq.ack();
        let without = message(&[]);
        assert_eq!(
            render("{prefix}{seq}.{ext}", &without).unwrap(),
            "test7.png"
        );
        without.ack();
    }

    #[test]
    fn fields_come_from_metadata_time_and_content() {
        let m = message(&[
            ("topic", "site/cam1/image"),
            ("source", "cam1"),
            ("frame", "12"),
            ("face", "0"),
            ("colour", "red"),
        ]);
        assert_eq!(
            render("{topic.1}/{frame}-{face}/{meta.colour}/{topic}", &m).unwrap(),
            "cam1/12-0/red/site/cam1/image"
        );
        assert_eq!(
            render("{hash:8}", &m).unwrap(),
            "ba7816bf",
            "SHA-256 of `abc`"
        );
        assert_eq!(
            render("{time:%Y/%m/%d/%H%M%S.%3f}{{x}}", &m).unwrap(),
            "1970/01/01/000000.000{x}"
        );
        assert_eq!(
            render("{frame}/{missing_thing}", &m),
            Err(KeyError::UnknownField("missing_thing".into()))
        );
        let missing = render("{meta.nope}", &m).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the key template needs metadata `nope`, which this message does not have \
             (it has: colour, face, frame, source, topic)"
        );
        m.ack();
    }

    #[test]
    fn utc_formatting_matches_known_dates() {
        // 2024-02-29T23:59:58.123Z, a leap day.
        assert_eq!(
            format_utc(1_709_251_198_123, "%Y-%m-%dT%H:%M:%S.%3fZ %s %%"),
            "2024-02-29T23:59:58.123Z 1709251198 %"
        );
        assert_eq!(format_utc(-1, "%Y-%m-%d %H:%M:%S"), "1969-12-31 23:59:59");
    }

    #[test]
    fn hostile_topics_cannot_escape_the_root() {
        for (topic, expected) in [
            ("../../x", "__/__/x/k"),
            ("/etc/x", "etc/x/k"),
            ("a/../../b", "a/__/__/b/k"),
            ("a\0b/./c", "a_b/c/k"),
            ("..\\..\\x", ".._.._x/k"),
            ("//", "k"),
        ] {
            let m = message(&[("topic", topic), ("source", "../up")]);
            assert_eq!(render("{topic}/k", &m).unwrap(), expected, "{topic:?}");
            // Other fields cannot add segments at all.
            assert_eq!(render("{source}", &m).unwrap(), ".._up");
            m.ack();
        }
        assert_eq!(sanitise("/../.."), Ok("__/__".into()));
        assert_eq!(sanitise("/./"), Err(KeyError::Empty));
        assert!(matches!(
            sanitise(&"k".repeat(2000)),
            Err(KeyError::TooLong(2000))
        ));
    }

    #[test]
    fn template_syntax_errors_are_reported() {
        assert_eq!(KeyTemplate::parse("a{seq"), Err(KeyError::Unclosed(1)));
        assert_eq!(KeyTemplate::parse("a}b"), Err(KeyError::LoneBrace(1)));
        assert_eq!(
            KeyTemplate::parse("{hash:x}"),
            Err(KeyError::BadNumber("hash:x".into()))
        );
        assert_eq!(
            KeyTemplate::parse("{topic.x}"),
            Err(KeyError::BadNumber("topic.x".into()))
        );
    }
}
