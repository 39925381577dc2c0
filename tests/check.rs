//! `flowrun check` as a user runs it, on the spec corpus.
//!
//! Every file in `tests/specs/bad/` is one validation rule. Its first lines
//! say what `flowrun check` must print for it:
//!
//! ```text
//! # expect: cycle.yaml:5:3: error: the graph has a cycle
//! # hint: messages would loop forever
//! ```
//!
//! An `expect` is `file:line:column: severity: ` followed by a substring of
//! the message; a `hint` line is a substring of the hint printed right under
//! the diagnostic before it. The files are checked from their own directory,
//! so the file name is printed as written. A file must produce exactly the
//! diagnostics it expects: a second, consequential error for one mistake is a
//! failure too. Files that expect only warnings must exit 0.
//!
//! Every spec in `specs/` and `tests/specs/good/` must check clean: exit 0,
//! no diagnostics, one summary line each.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FLOWRUN: &str = env!("CARGO_BIN_EXE_flowrun");

/// Variables the corpus uses as "not set": removed from the test's
/// environment in case a developer happens to have one.
const UNSET: [&str; 5] = [
    "FLOWRUN_TEST_UNSET_ACK",
    "FLOWRUN_TEST_UNSET_GREETING",
    "FLOWRUN_TEST_UNSET_COUNT",
    "FLOWRUN_TEST_UNSET_A",
    "FLOWRUN_TEST_UNSET_B",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bad_dir() -> PathBuf {
    repo().join("tests/specs/bad")
}

/// `flowrun check FILES...` run from `dir`.
fn check(dir: &Path, files: &[String]) -> Output {
    check_with(dir, files, &[])
}

/// `flowrun check FILES...` run from `dir` with the variables `env`.
fn check_with(dir: &Path, files: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(FLOWRUN);
    command.arg("check").args(files).current_dir(dir);
    for name in UNSET.iter().chain(&[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("flowrun runs")
}

/// The S3 keys `cos_put` reads by name, as a deployment exports them.
const S3_KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "id"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
];

/// Both output streams, as one text to search.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One diagnostic a corpus file expects.
#[derive(Debug)]
struct Expect {
    /// `file:line:column: severity: `
    location: String,
    /// A substring of the message.
    message: String,
    /// Substrings of the hint under it.
    hints: Vec<String>,
}

impl Expect {
    fn is_error(&self) -> bool {
        self.location.ends_with(": error: ")
    }

    /// Whether `line` is this diagnostic.
    fn matches(&self, line: &str) -> bool {
        line.strip_prefix(&self.location)
            .is_some_and(|message| message.contains(&self.message))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.location, self.message)
    }
}

/// The `# expect:` and `# hint:` lines at the top of a corpus file.
fn expectations(path: &Path) -> Result<Vec<Expect>, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    if !content.starts_with("# expect: ") {
        return Err("does not start with a `# expect:` line".into());
    }
    let mut expects: Vec<Expect> = Vec::new();
    for line in content.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect: ") {
            let parsed = parse_expect(rest).ok_or_else(|| {
                format!("`{line}` is not `# expect: file:line:col: severity: message`")
            })?;
            expects.push(parsed);
        } else if let Some(hint) = line.strip_prefix("# hint: ") {
            let last = expects
                .last_mut()
                .ok_or_else(|| format!("`{line}` comes before any `# expect:`"))?;
            last.hints.push(hint.to_owned());
        }
    }
    Ok(expects)
}

fn parse_expect(rest: &str) -> Option<Expect> {
    let mut parts = rest.splitn(4, ':');
    let (file, line, column, tail) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    line.parse::<usize>().ok()?;
    column.parse::<usize>().ok()?;
    let (severity, message) = tail.strip_prefix(' ')?.split_once(": ")?;
    if !matches!(severity, "error" | "warning") {
        return None;
    }
    Some(Expect {
        location: format!("{file}:{line}:{column}: {severity}: "),
        message: message.to_owned(),
        hints: Vec::new(),
    })
}

/// Whether the output shows `expect`, with its hints right under it.
fn shows(output: &str, expect: &Expect) -> bool {
    let lines: Vec<&str> = output.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        expect.matches(line)
            && expect.hints.iter().all(|hint| {
                lines
                    .get(i + 1)
                    .and_then(|next| next.strip_prefix("  hint: "))
                    .is_some_and(|shown| shown.contains(hint.as_str()))
            })
    })
}

/// Lines that are diagnostics about `file`.
fn diagnostics_about<'a>(output: &'a str, file: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter(|line| {
            line.strip_prefix(file)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|rest| rest.contains(": error: ") || rest.contains(": warning: "))
        })
        .collect()
}

/// What is wrong with the output of checking one corpus file, if anything.
fn problems_with(file: &str, expects: &[Expect], output: &Output) -> Vec<String> {
    let shown = text(output);
    let mut problems = Vec::new();
    if shown.contains("panicked") {
        problems.push("flowrun panicked".to_owned());
    }
    let want_failure = expects.iter().any(Expect::is_error);
    let want_code = if want_failure { 1 } else { 0 };
    if output.status.code() != Some(want_code) {
        problems.push(format!(
            "exit code {:?}, expected {want_code}",
            output.status.code()
        ));
    }
    for expect in expects {
        if !shows(&shown, expect) {
            let hints: String = expect
                .hints
                .iter()
                .map(|h| format!("\n      hint: {h}"))
                .collect();
            problems.push(format!("missing: {expect}{hints}"));
        }
    }
    let diagnostics = diagnostics_about(&shown, file);
    if diagnostics.len() != expects.len() {
        problems.push(format!(
            "{} diagnostics, {} expected",
            diagnostics.len(),
            expects.len()
        ));
    }
    problems
}

/// The corpus files, sorted, with what each expects.
fn corpus() -> Vec<(String, Result<Vec<Expect>, String>)> {
    let mut names: Vec<String> = std::fs::read_dir(bad_dir())
        .expect("tests/specs/bad exists")
        .map(|entry| entry.expect("a readable directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let expects = expectations(&bad_dir().join(&name));
            (name, expects)
        })
        .collect()
}

/// Panics with every failure at once, so one run shows all that is wrong.
fn report(failures: &[(String, Vec<String>, String)]) {
    if failures.is_empty() {
        return;
    }
    let mut message = format!("{} corpus files failed:\n", failures.len());
    for (file, problems, output) in failures {
        let _ = writeln!(message, "\n{file}:");
        for problem in problems {
            let _ = writeln!(message, "  - {problem}");
        }
        let _ = writeln!(message, "  output:");
        for line in output.lines() {
            let _ = writeln!(message, "    | {line}");
        }
    }
    panic!("{message}");
}

#[test]
fn every_bad_spec_reports_what_it_expects_and_nothing_else() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 30,
        "the corpus has {} files, fewer than 30",
        corpus.len()
    );
    let mut failures = Vec::new();
    for (file, expects) in &corpus {
        let expects = match expects {
            Ok(expects) => expects,
            Err(problem) => {
                failures.push((file.clone(), vec![problem.clone()], String::new()));
                continue;
            }
        };
        let output = check(&bad_dir(), std::slice::from_ref(file));
        let problems = problems_with(file, expects, &output);
        if !problems.is_empty() {
            failures.push((file.clone(), problems, text(&output)));
        }
    }
    report(&failures);
}

#[test]
fn checking_the_whole_corpus_at_once_reports_every_file() {
    let corpus = corpus();
    let files: Vec<String> = corpus.iter().map(|(file, _)| file.clone()).collect();
    let output = check(&bad_dir(), &files);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    let mut failures = Vec::new();
    for (file, expects) in &corpus {
        let Ok(expects) = expects else { continue };
        let mut problems: Vec<String> = expects
            .iter()
            .filter(|expect| !shows(&shown, expect))
            .map(|expect| format!("missing: {expect}"))
            .collect();
        // One summary line per file: its counts when it failed, `ok` when
        // it only had warnings.
        let summary = if expects.iter().any(Expect::is_error) {
            format!(
                "{file}: {} error",
                expects.iter().filter(|e| e.is_error()).count()
            )
        } else {
            format!("{file}: ok: ")
        };
        if !shown.lines().any(|line| line.starts_with(&summary)) {
            problems.push(format!("no summary line starting `{summary}`"));
        }
        if !problems.is_empty() {
            failures.push((file.clone(), problems, String::new()));
        }
    }
    if !failures.is_empty() {
        failures.push(("(the whole output)".into(), Vec::new(), shown));
    }
    report(&failures);
}

#[test]
fn a_spec_larger_than_the_limit_is_refused_at_its_first_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut spec = String::from("version: 1\nnodes:\n");
    let mut i = 0;
    while spec.len() <= 1024 * 1024 {
        let _ = writeln!(spec, "  gen{i}: {{type: generate, count: 1}}");
        i += 1;
    }
    std::fs::write(dir.path().join("huge.yaml"), &spec).expect("write the spec");
    let output = check(dir.path(), &["huge.yaml".into()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    let expected = format!(
        "huge.yaml:1:1: error: the spec is {} bytes, more than the 1048576 a spec may have",
        spec.len()
    );
    assert!(shown.contains(&expected), "{shown}");
    assert_eq!(diagnostics_about(&shown, "huge.yaml").len(), 1, "{shown}");
}

#[test]
fn an_empty_file_is_an_empty_spec() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("empty.yaml"), "").expect("write the spec");
    let output = check(dir.path(), &["empty.yaml".into()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("empty.yaml:1:1: error: the spec is empty\n  hint: a spec needs at least `version: 1` and `nodes:`"),
        "{shown}"
    );
}

#[test]
fn a_missing_file_is_reported_and_the_other_files_still_checked() {
    let output = check(
        repo(),
        &["no/such/spec.yaml".into(), "specs/hello.yaml".into()],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("no/such/spec.yaml:1:1: error: cannot read the spec"),
        "{shown}"
    );
    assert!(shown.contains("specs/hello.yaml: ok: "), "{shown}");
}

/// Every spec file in `dir` (relative to the repo), sorted.
fn specs_in(dir: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .map(|entry| entry.expect("a readable directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_good_spec_checks_clean_with_a_one_line_summary() {
    let mut files = specs_in("specs");
    assert!(
        files.contains(&"specs/hello.yaml".to_owned()),
        "specs/hello.yaml is missing"
    );
    files.extend(specs_in("tests/specs/good"));
    let output = check_with(repo(), &files, S3_KEYS);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.is_empty(),
        "good specs print no diagnostics:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "one summary line per spec:\n{stdout}"
    );
    for (line, file) in lines.iter().zip(&files) {
        assert!(
            line.starts_with(&format!("{file}: ok: `")),
            "`{line}` is not the summary of {file}"
        );
    }
}

#[test]
fn the_summary_names_nodes_edges_and_variables() {
    let output = check(repo(), &["specs/hello.yaml".into()]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "specs/hello.yaml: ok: `hello`, 3 nodes, 2 edges; reads COUNT\n"
    );
}

/// A spec that cannot run for want of the S3 keys `cos_put` reads by name
/// is refused by `check`, located at the `s3` block, naming both; with them
/// the summary lists them among what the spec reads.
#[test]
fn check_refuses_a_spec_whose_node_needs_keys_that_are_not_set() {
    let output = check(repo(), &["specs/cloud-cos.yaml".into()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("specs/cloud-cos.yaml:")
                    && l.contains(": error: `backend.s3.")
                    && l.contains(&format!(
                        "from the environment variable `{key}`, which is not set"
                    ))),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("hint: export AWS_ACCESS_KEY_ID before running flowrun"),
        "{stderr}"
    );

    let output = check_with(repo(), &["specs/cloud-cos.yaml".into()], S3_KEYS);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN"),
        "{stdout}"
    );
}

/// A file with errors does not claim "0 warnings" as if its graph had been
/// judged: the summary says the shape is checked once the errors are fixed.
#[test]
fn a_failing_summary_says_the_shape_is_checked_after_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "version: 1\nnodes:\n  a: {type: generat}\n  b: {type: print}\n",
    )
    .unwrap();
    let output = check(dir.path(), &["bad.yaml".into()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.ends_with(
            "bad.yaml: 1 error, 0 warnings; the graph's shape is checked once the errors are fixed\n"
        ),
        "{stderr}"
    );
}
