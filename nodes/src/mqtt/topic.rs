//! Topic templates (`faces/{source}/{frame}-{face}`) filled from metadata,
//! and the metadata a received topic adds.

use flowrun_runtime::{MetaValue, Metadata};

use super::keys;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Key(String),
}

/// Why a topic template cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the topic is empty")]
    Empty,
    #[error("a publish topic cannot hold the wildcards `#` or `+`")]
    Wildcard,
    /// The byte offset of the `{` in the template.
    #[error("unclosed `{{` at byte {0}")]
    Unclosed(usize),
    /// The text between the braces.
    #[error("bad placeholder `{{{0}}}`: write `{{metadata_key}}`")]
    Placeholder(String),
    #[error("a `}}` without its `{{`")]
    StrayClose,
}

/// Why a message's metadata does not make a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the message has no `{0}` metadata for the topic")]
    Missing(String),
    #[error("metadata `{key}` = `{value}` would put a wildcard in the topic")]
    Wildcard { key: String, value: String },
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    pub fn parse(template: &str) -> Result<TopicTemplate, TemplateError> {
        if template.is_empty() {
            return Err(TemplateError::Empty);
        }
        if template.contains(['#', '+']) {
            return Err(TemplateError::Wildcard);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or(TemplateError::Unclosed(template.len() - rest.len() + open))?;
            let key = &after[..close];
            if key.is_empty() || key.contains('{') {
                return Err(TemplateError::Placeholder(key.to_owned()));
            }
            parts.push(Part::Key(key.to_owned()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(TemplateError::StrayClose);
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(TopicTemplate { parts })
    }

    /// The topic for a message, or the first placeholder its metadata lacks.
    pub fn render(&self, meta: &Metadata) -> Result<String, RenderError> {
        let mut topic = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => topic.push_str(text),
                Part::Key(key) => {
                    let value = meta
                        .get(key)
                        .ok_or_else(|| RenderError::Missing(key.clone()))?
                        .to_string();
                    if value.contains(['#', '+', '\0']) {
                        return Err(RenderError::Wildcard {
                            key: key.clone(),
                            value,
                        });
                    }
                    topic.push_str(&value);
                }
            }
        }
        Ok(topic)
    }
}

impl TopicTemplate {
    /// The metadata a received `topic` carries by this template, read the
    /// other way: `faces/{device}/{source}/{timestamp_ms}-{frame}-{face}`
    /// takes `faces/door-1/camera/1764087180123-42-0` apart into `device`,
    /// `source`, `timestamp_ms`, `frame` and `face` (numbers as numbers).
    /// A field ends where the text after it begins and never spans a `/`.
    /// `None` when the topic does not have the template's shape.
    pub fn capture(&self, topic: &str) -> Option<Vec<(String, MetaValue)>> {
        let mut rest = topic;
        let mut fields = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Text(text) => rest = rest.strip_prefix(text.as_str())?,
                Part::Key(key) => {
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Text(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    let value = &rest[..end];
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    let value = match value.parse::<i64>() {
                        Ok(n) => MetaValue::Int(n),
                        Err(_) => MetaValue::from(value),
                    };
                    fields.push((key.clone(), value));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(fields)
    }
}

/// Adds `topic` and `topic_level_0`, `topic_level_1`, … for a received topic.
pub fn add_topic_meta(meta: &mut Metadata, topic: &str) {
    meta.insert(flowrun_runtime::keys::TOPIC.into(), topic.into());
    for (i, level) in topic.split('/').enumerate() {
        meta.insert(
            format!("{}{i}", keys::TOPIC_LEVEL_PREFIX),
            MetaValue::from(level),
        );
    }
}

/// Whether `topic` matches the subscription `filter` (`+` one level, `#` the rest).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (want, Some(got)) if want == got => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_from_metadata() {
        let t = TopicTemplate::parse("faces/{source}/{frame}-{face}").unwrap();
        let mut meta = Metadata::new();
        meta.insert("source".into(), "cam0".into());
        meta.insert("frame".into(), 12i64.into());
        meta.insert("face".into(), 1i64.into());
        assert_eq!(t.render(&meta).unwrap(), "faces/cam0/12-1");
        meta.remove("face");
        assert_eq!(
            t.render(&meta).unwrap_err().to_string(),
            "the message has no `face` metadata for the topic"
        );
    }

    #[test]
    fn refuses_bad_templates() {
        assert_eq!(TopicTemplate::parse("a/#"), Err(TemplateError::Wildcard));
        let unclosed = TopicTemplate::parse("a/{x").unwrap_err();
        assert_eq!(unclosed.to_string(), "unclosed `{` at byte 2");
        assert_eq!(
            TopicTemplate::parse("a/{}").unwrap_err().to_string(),
            "bad placeholder `{}`: write `{metadata_key}`"
        );
        assert_eq!(
            TopicTemplate::parse("a/x}").unwrap_err().to_string(),
            "a `}` without its `{`"
        );
        assert_eq!(
            TopicTemplate::parse("image")
                .unwrap()
                .render(&Metadata::new())
                .unwrap(),
            "image"
        );
    }

    #[test]
    fn matches_wildcards() {
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(matches("#", "x"));
    }

    #[test]
    fn takes_a_topic_apart_by_its_template() {
        let t =
            TopicTemplate::parse("faces/{device}/{source}/{timestamp_ms}-{frame}-{face}").unwrap();
        let fields = t.capture("faces/door-1/camera/1764087180123-42-0").unwrap();
        assert_eq!(
            fields,
            [
                ("device".to_owned(), MetaValue::from("door-1")),
                ("source".to_owned(), MetaValue::from("camera")),
                ("timestamp_ms".to_owned(), MetaValue::Int(1764087180123)),
                ("frame".to_owned(), MetaValue::Int(42)),
                ("face".to_owned(), MetaValue::Int(0)),
            ]
        );
        assert_eq!(t.capture("faces/door-1/camera/x"), None);
        assert_eq!(t.capture("status/door-1/bridge"), None);
        assert_eq!(t.capture("faces/a/b/c/1-2-3"), None);
    }

    #[test]
    fn splits_topic_levels() {
        let mut meta = Metadata::new();
        add_topic_meta(&mut meta, "faces/cam0/3");
        assert_eq!(meta["topic_level_1"], MetaValue::from("cam0"));
        assert_eq!(meta["topic"], MetaValue::from("faces/cam0/3"));
    }
}
