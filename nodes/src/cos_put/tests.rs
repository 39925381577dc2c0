//! `cos_put` as a whole: keys written through the `fs` backend, and the
//! checks `flowrun check` reports.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use flowrun_runtime::{Message, Metadata, Payload};

use super::fs::FsStore;
use super::key::{KeyInput, KeyTemplate};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn hostile_topics_write_nothing_outside_the_root() {
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path().join("a/b/root");
    std::fs::create_dir_all(&root).unwrap();
    let store = Arc::new(FsStore::new(root.clone(), false, true));
    let template = KeyTemplate::parse("{topic}/{prefix}{seq}.{ext}").unwrap();
    let hostile = [
        "../../x",
        "/etc/x",
        "a/../../b",
        "a\0b",
        "..",
        "../../../../../../../../tmp/x",
        "\\..\\..\\x",
        "./../.",
    ];
    for (n, topic) in hostile.iter().enumerate() {
        let mut meta = Metadata::new();
        meta.insert("topic".into(), (*topic).into());
        meta.insert("seq".into(), (n as i64).into());
        let message = Message::new(Payload::Bytes(Bytes::from_static(b"x")), meta);
        let input = KeyInput {
            prefix: "test",
            counter: 0,
            content_type: "image/png",
            now_ms: 0,
        };
        let key = template.render(&message, &input).unwrap();
        assert!(
            !key.starts_with('/') && !key.split('/').any(|s| s == ".."),
            "{key}"
        );
        assert!(!key.contains('\0'), "{key:?}");
        store.put(&key, Bytes::from_static(b"x")).await.unwrap();
        message.ack();
    }
    let written = files_under(sandbox.path());
    assert_eq!(written.len(), hostile.len());
    for path in written {
        assert!(path.starts_with(&root), "{} escaped", path.display());
    }
}

#[test]
fn check_reports_each_bad_field_with_its_line() {
    let yaml = r#"version: 1
name: bad
nodes:
  source:
    type: generate
    count: 1
  store:
    type: cos_put
    inputs: [source]
    key: "{prefix}{sequence}.{ext}"
    concurrency: 0
    metadata: [source, "bad name"]
    backend:
      s3:
        endpoint: s3.example.com
        bucket: b
"#;
    // The keys are set: only the config's own errors are reported.
    let keys = |name: &str| name.starts_with("AWS_").then(|| "set".to_owned());
    let checked =
        flowrun_runtime::validate(Path::new("spec.yaml"), yaml, &crate::catalogue(), &keys);
    let errors: Vec<String> = checked.errors().map(ToString::to_string).collect();
    assert!(checked.plan.is_none());
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("spec.yaml:10:") && errors[0].contains("unknown field `{sequence}`"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("spec.yaml:11:") && errors[1].contains("at least 1"),
        "{errors:#?}"
    );
    assert!(
        errors[2].starts_with("spec.yaml:12:") && errors[2].contains("`bad name` cannot be"),
        "{errors:#?}"
    );
    assert!(
        errors[3].starts_with("spec.yaml:15:")
            && errors[3].contains("`s3.example.com` is not an http:// or https:// URL"),
        "{errors:#?}"
    );
}
