//! docker/: what can be checked without a Docker engine (this machine has
//! only the client). Each compose file is valid for Debian's docker-compose
//! 1.29 once its required variables are set, and says which one is missing
//! otherwise; every file, spec and variable the compose files and the
//! Dockerfile name exists or is read by the spec that runs; the Dockerfile
//! keeps its shape (multi-stage, non-root, only runtime libraries in the
//! image it ships). Images are not built and containers are not started.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const EDGE: &str = "docker/edge/compose.yaml";
const CLOUD: &str = "docker/cloud/compose.yaml";
const DOCKERFILE: &str = "docker/Dockerfile";

/// The variables each compose file needs before it is valid.
const EDGE_REQUIRED: &[(&str, &str)] = &[("CLOUD_BROKER", "mqtt://cloud.example:1883")];
/// What a user sets for the cloud through the S3 API. None is required by
/// compose (cloud-fs.yaml needs none of them): flowrun refuses to start
/// cloud-cos.yaml without the keys, naming them.
const CLOUD_VARS: &[(&str, &str)] = &[
    (
        "S3_ENDPOINT",
        "https://s3.eu-de.cloud-object-storage.appdomain.cloud",
    ),
    ("AWS_ACCESS_KEY_ID", "test-access-key"),
    ("AWS_SECRET_ACCESS_KEY", "test-secret-key"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docker-compose -f FILE [--profile P] config` with exactly `vars` in its
/// environment (so the developer's own variables cannot make it pass): the
/// resolved configuration, or docker-compose's error.
fn compose_config(
    file: &str,
    profile: Option<&str>,
    vars: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let mut command = Command::new("docker-compose");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .arg("-f")
        .arg(root().join(file));
    if let Some(profile) = profile {
        command.args(["--profile", profile]);
    }
    let output = command.arg("config").output().unwrap_or_else(|e| {
        panic!("cannot run docker-compose ({e}); scripts/setup.sh installs it")
    });
    if !output.status.success() {
        anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8(output.stdout).expect("docker-compose printed UTF-8");
    let tree = flowrun_runtime::spec::yaml::parse(&text)
        .unwrap_or_else(|e| panic!("docker-compose printed YAML that does not parse: {e:?}"));
    Ok(tree.to_json())
}

fn valid_config(file: &str, profile: Option<&str>, vars: &[(&str, &str)]) -> Value {
    compose_config(file, profile, vars)
        .unwrap_or_else(|e| panic!("docker-compose -f {file} config refused it: {e}"))
}

fn services(config: &Value) -> BTreeSet<String> {
    config["services"]
        .as_object()
        .expect("a compose file has services")
        .keys()
        .cloned()
        .collect()
}

/// The `environment:` of a resolved service, as strings.
fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Dockerfile as instructions: continuation lines joined, comments gone.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(DOCKERFILE)).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (word, rest) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                instructions.push((word.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

/// The Dockerfile's stages: the `FROM` argument (global `ARG` defaults
/// substituted) and the instructions after it.
fn stages() -> Vec<(String, Vec<(String, String)>)> {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (word, rest) in dockerfile() {
        match (word.as_str(), stages.last_mut()) {
            ("ARG", None) => {
                let (name, default) = rest.split_once('=').unwrap_or((&rest, ""));
                args.insert(name.to_owned(), default.to_owned());
            }
            ("FROM", _) => {
                let mut from = rest.clone();
                for (name, default) in &args {
                    from = from.replace(&format!("${{{name}}}"), default);
                }
                stages.push((from, Vec::new()));
            }
            (_, Some(stage)) => stage.1.push((word, rest)),
            (_, None) => panic!("{word} before the first FROM"),
        }
    }
    stages
}

/// The image stage `name` builds: the external image at the root of its
/// `FROM` chain, and its instructions after those of the stages it starts
/// from.
fn image(name: &str) -> (String, Vec<(String, String)>) {
    let stages = stages();
    let named = |n: &str| {
        stages
            .iter()
            .find(|(from, _)| from.ends_with(&format!(" AS {n}")))
    };
    let (from, own) = named(name).unwrap_or_else(|| panic!("the Dockerfile has no stage `{name}`"));
    let parent = from.split_whitespace().next().unwrap_or_default();
    if named(parent).is_none() {
        return (parent.to_owned(), own.clone());
    }
    let (base, mut instructions) = image(parent);
    instructions.extend(own.iter().cloned());
    (base, instructions)
}

/// The images the Dockerfile ships, by stage name.
const SHIPPED: [&str; 2] = ["cloud", "edge"];

/// `COPY src… dest` lines of the edge image (the default target; both
/// images copy the same files) that copy from the build context: image
/// path prefix → repository path.
fn copied_into_image() -> Vec<(String, PathBuf)> {
    image("edge")
        .1
        .iter()
        .filter(|(word, rest)| word == "COPY" && !rest.starts_with("--from"))
        .map(|(_, rest)| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            assert_eq!(parts.len(), 2, "one source per COPY into the image: {rest}");
            (parts[1].to_owned(), root().join(parts[0]))
        })
        .collect()
}

/// The repository file an absolute path in the image comes from.
fn in_repository(image_path: &str) -> PathBuf {
    copied_into_image()
        .into_iter()
        .find_map(|(dest, source)| {
            image_path
                .strip_prefix(dest.as_str())
                .map(|rest| source.join(rest.trim_start_matches('/')))
        })
        .unwrap_or_else(|| panic!("{image_path} is not copied into the image"))
}

/// Runs `flowrun check SPEC` with exactly `vars` in the environment: the
/// variables it reads, or its diagnostics.
fn check_spec(spec: &Path, vars: &BTreeMap<String, String>) -> Result<BTreeSet<String>, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_flowrun"))
        .env_clear()
        .envs(vars)
        .arg("check")
        .arg(spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // `SPEC: ok: `name`, 5 nodes, 3 edges; reads A, B, C`
    Ok(stdout
        .split_once("; reads ")
        .map(|(_, names)| names.trim().split(", ").map(String::from).collect())
        .unwrap_or_default())
}

/// Variables a spec hands to a node by name (`access_key_id_env: NAME`),
/// read by the node itself rather than interpolated.
fn named_env_vars(spec: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(spec)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .ends_with("_env")
                .then(|| value.trim().to_owned())
        })
        .collect()
}

/// Each flowrun service of a resolved compose config: the spec it runs
/// (as a repository path) and its environment.
fn flowrun_services(config: &Value) -> Vec<(PathBuf, BTreeMap<String, String>)> {
    config["services"]
        .as_object()
        .unwrap()
        .values()
        .filter(|service| {
            service["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("flowrun"))
        })
        .map(|service| {
            let command: Vec<&str> = service["command"]
                .as_array()
                .expect("the flowrun service says which spec it runs")
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let spec = command
                .iter()
                .find(|a| a.ends_with(".yaml"))
                .expect("the command names a spec");
            (in_repository(spec), environment(service))
        })
        .collect()
}

#[test]
fn compose_files_are_valid_once_their_required_variables_are_set() {
    let edge = valid_config(EDGE, None, EDGE_REQUIRED);
    assert_eq!(
        services(&edge),
        BTreeSet::from(["flowrun".into(), "mosquitto".into()])
    );
    let cloud = valid_config(CLOUD, Some("minio"), CLOUD_VARS);
    assert_eq!(
        services(&cloud),
        BTreeSet::from(["flowrun".into(), "minio".into(), "mosquitto".into()])
    );
    // The self-hosted bucket is opt-in (docker-compose 1.29's `config`
    // lists every service, whatever the profile).
    assert_eq!(
        cloud["services"]["minio"]["profiles"],
        serde_json::json!(["minio"])
    );
    // Each side on a user-defined bridge network of its own.
    for (config, network) in [(&edge, "edge"), (&cloud, "cloud")] {
        assert_eq!(config["networks"][network]["driver"], "bridge");
        for (name, service) in config["services"].as_object().unwrap() {
            assert!(
                service["networks"].get(network).is_some(),
                "service {name} is not on the {network} network"
            );
        }
    }
    // The edge container gets the camera device.
    let devices = edge["services"]["flowrun"]["devices"].to_string();
    assert!(devices.contains(":/dev/video0"), "{devices}");
}

#[test]
fn a_missing_required_variable_is_named() {
    for (file, required) in [(EDGE, EDGE_REQUIRED)] {
        for (missing, _) in required {
            let others: Vec<(&str, &str)> = required
                .iter()
                .copied()
                .filter(|(name, _)| name != missing)
                .collect();
            let error = compose_config(file, None, &others)
                .err()
                .unwrap_or_else(|| panic!("{file} accepted a missing {missing}"));
            assert!(
                error.to_string().contains(missing),
                "{file} without {missing}: {error}"
            );
        }
    }
}

#[test]
fn files_the_compose_files_mount_and_build_from_exist() {
    for (file, vars) in [(EDGE, EDGE_REQUIRED), (CLOUD, CLOUD_VARS)] {
        let config = valid_config(file, Some("minio"), vars);
        for (name, service) in config["services"].as_object().unwrap() {
            if let Some(build) = service.get("build") {
                let context = PathBuf::from(build["context"].as_str().unwrap());
                assert_eq!(context, root(), "{file}: {name} builds from the repository");
                let dockerfile = context.join(build["dockerfile"].as_str().unwrap());
                assert!(
                    dockerfile.is_file(),
                    "{file}: {} is missing",
                    dockerfile.display()
                );
            }
            for volume in service["volumes"].as_array().into_iter().flatten() {
                let volume = volume.as_str().unwrap();
                // Named volumes have no `/` before the colon; bind mounts are
                // resolved to absolute host paths by docker-compose.
                let host = volume.split(':').next().unwrap();
                if host.starts_with('/') {
                    assert!(
                        Path::new(host).exists(),
                        "{file}: {name} mounts {host}, which is missing"
                    );
                }
            }
        }
    }
}

#[test]
fn each_edge_variant_runs_an_existing_spec_that_reads_what_compose_gives_it() {
    for variant in ["edge-bridge.yaml", "edge-forwarder.yaml"] {
        let mut vars = EDGE_REQUIRED.to_vec();
        vars.push(("FLOWRUN_SPEC", variant));
        let config = valid_config(EDGE, None, &vars);
        let running = flowrun_services(&config);
        assert_eq!(running.len(), 1);
        let (spec, env) = &running[0];
        assert_eq!(spec, &root().join("specs").join(variant));
        assert_reads_exactly_what_it_is_given(spec, env);
    }
}

#[test]
fn the_cloud_runs_an_existing_spec_that_reads_what_compose_gives_it() {
    // Each variant is valid in its container, and every variable compose
    // sets is read by one of them (the S3 ones by cloud-cos, BUCKET_DIR by
    // cloud-fs).
    let mut read_by_some = BTreeSet::new();
    let mut given = BTreeSet::new();
    for variant in ["cloud-cos.yaml", "cloud-fs.yaml"] {
        let mut vars = CLOUD_VARS.to_vec();
        vars.push(("FLOWRUN_SPEC", variant));
        let config = valid_config(CLOUD, None, &vars);
        let running = flowrun_services(&config);
        assert_eq!(running.len(), 1);
        let (spec, env) = &running[0];
        assert_eq!(spec, &root().join("specs").join(variant));
        let reads = check_spec(spec, env)
            .unwrap_or_else(|e| panic!("{} is not valid in its container: {e}", spec.display()));
        read_by_some.extend(reads);
        read_by_some.extend(named_env_vars(spec));
        given.extend(env.keys().cloned());
    }
    let unread: Vec<&String> = given.difference(&read_by_some).collect();
    assert!(
        unread.is_empty(),
        "compose sets {unread:?}, which no cloud spec reads"
    );
    // cloud-cos without its keys is refused by flowrun, naming them.
    let config = valid_config(CLOUD, None, &CLOUD_VARS[..1]);
    let (spec, env) = &flowrun_services(&config)[0];
    let error = check_spec(spec, env).expect_err("cloud-cos.yaml accepted no keys");
    assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");
    // The self-hosted bucket's keys are the ones flowrun signs with.
    let minio = valid_config(CLOUD, Some("minio"), CLOUD_VARS);
    let minio_env = environment(&minio["services"]["minio"]);
    assert_eq!(minio_env["MINIO_ROOT_USER"], CLOUD_VARS[1].1);
    assert_eq!(minio_env["MINIO_ROOT_PASSWORD"], CLOUD_VARS[2].1);
}

/// The spec is valid with exactly the container's environment, and every
/// variable compose sets is one the spec (or a node, by name) reads: a
/// misspelt variable would otherwise be silently ignored for its default.
fn assert_reads_exactly_what_it_is_given(spec: &Path, env: &BTreeMap<String, String>) {
    let mut reads = check_spec(spec, env)
        .unwrap_or_else(|e| panic!("{} is not valid in its container: {e}", spec.display()));
    reads.extend(named_env_vars(spec));
    let given: BTreeSet<String> = env.keys().cloned().collect();
    let unread: Vec<&String> = given.difference(&reads).collect();
    assert!(
        unread.is_empty(),
        "compose sets {unread:?}, which {} does not read (it reads {reads:?})",
        spec.display()
    );
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_ships_slim_non_root_ones() {
    let stages = stages();
    let named = |n: &str| {
        stages
            .iter()
            .find(|(from, _)| from.ends_with(&format!(" AS {n}")))
            .unwrap_or_else(|| panic!("the Dockerfile has no stage `{n}`"))
    };
    assert!(
        stages.last().unwrap().0.ends_with(" AS edge"),
        "the edge image is the default target (the last stage)"
    );
    // By default (a registry at hand) the binaries are compiled from source
    // in a Rust image; scripts/images.sh passes BINARIES=prebuilt.
    assert_eq!(named("binaries").0, "source AS binaries");
    let (source_from, build) = named("source");
    assert!(source_from.starts_with("rust:"), "{source_from}");
    assert!(named("prebuilt")
        .1
        .iter()
        .any(|(word, rest)| word == "COPY" && rest.starts_with("docker/dist/${TARGETARCH}/")));
    assert!(
        root().join("docker/dist/README.md").is_file(),
        "docker/dist/ exists in a fresh checkout"
    );

    // The build stage gets every workspace member and the lock file.
    let sources: BTreeSet<String> = build
        .iter()
        .filter(|(word, _)| word == "COPY")
        .flat_map(|(_, rest)| {
            let parts: Vec<String> = rest.split_whitespace().map(String::from).collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "runtime", "nodes"] {
        assert!(
            sources.contains(needed),
            "the build stage does not COPY {needed}"
        );
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("members = "))
        .expect("the workspace lists its members");
    for member in members.trim_matches(['[', ']']).split(',') {
        let member = member.trim().trim_matches('"');
        assert!(
            sources.contains(member),
            "workspace member {member} is not copied"
        );
    }
    for source in &sources {
        assert!(
            root().join(source).exists(),
            "COPY {source}: missing from the repository"
        );
    }

    for name in SHIPPED {
        let (base, instructions) = image(name);
        assert_ships_a_slim_non_root_image(name, &base, &instructions, "binaries");
    }
}

/// A shipped image: from a slim image, the binary from the build stage,
/// files that exist, a user that is not root, a default spec in the image.
fn assert_ships_a_slim_non_root_image(
    name: &str,
    base: &str,
    stage: &[(String, String)],
    build_name: &str,
) {
    assert!(
        base.contains("slim"),
        "the {name} image starts from a slim image: {base}"
    );
    assert!(
        stage.iter().any(
            |(word, rest)| word == "COPY" && rest.starts_with(&format!("--from={build_name} "))
        ),
        "the {name} stage copies the binary from the `{build_name}` stage"
    );
    for (word, rest) in stage
        .iter()
        .filter(|(word, rest)| word == "COPY" && !rest.starts_with("--from"))
    {
        let source = rest.split_whitespace().next().unwrap_or_default();
        assert!(
            root().join(source).exists(),
            "{name}: {word} {rest}: {source} is missing"
        );
    }
    let user = stage
        .iter()
        .rev()
        .find(|(word, _)| word == "USER")
        .map(|(_, user)| user.clone())
        .unwrap_or_else(|| panic!("the {name} stage sets no USER"));
    assert!(
        !["root", "0", "0:0"].contains(&user.as_str()),
        "{name} runs as {user}"
    );
    let cmd = &stage
        .iter()
        .rev()
        .find(|(word, _)| word == "CMD")
        .unwrap_or_else(|| panic!("the {name} stage has no CMD"))
        .1;
    let spec: Vec<Value> = serde_json::from_str(cmd).expect("CMD in exec form");
    let spec = spec.last().and_then(Value::as_str).unwrap();
    assert!(
        in_repository(spec).is_file(),
        "{name}: CMD runs {spec}, which is missing"
    );
}

/// The packages an image installs with apt-get.
fn packages(name: &str) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for (_, rest) in image(name).1.iter().filter(|(word, _)| word == "RUN") {
        for command in rest.split("&&") {
            let words: Vec<&str> = command.split_whitespace().collect();
            if let Some(at) = words.iter().position(|w| *w == "install") {
                if words[..at].contains(&"apt-get") {
                    packages.extend(
                        words[at + 1..]
                            .iter()
                            .filter(|w| !w.starts_with('-'))
                            .map(|w| w.to_string()),
                    );
                }
            }
        }
    }
    packages
}

#[test]
fn the_images_install_no_build_tools() {
    for name in SHIPPED {
        for package in packages(name) {
            assert!(
                !package.ends_with("-dev")
                    && ![
                        "build-essential",
                        "clang",
                        "gcc",
                        "g++",
                        "cargo",
                        "rustc",
                        "pkg-config"
                    ]
                    .contains(&package.as_str()),
                "the {name} stage installs the build tool {package}"
            );
        }
    }
}

#[test]
fn the_edge_image_installs_the_opencv_libraries_the_binary_links() {
    let packages = packages("edge");
    // The libraries the binary names (ELF NEEDED), e.g. libopencv_core.so.406
    // from Debian's libopencv-core406.
    let output = Command::new("readelf")
        .arg("-d")
        .arg(env!("CARGO_BIN_EXE_flowrun"))
        .output()
        .expect("readelf (binutils) is installed with build-essential");
    let dynamic = String::from_utf8_lossy(&output.stdout);
    let opencv: Vec<String> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split_once("[lib")
                .map(|(_, name)| name.trim_end_matches(']').to_owned())
        })
        .filter_map(|name| {
            let (stem, version) = name.split_once(".so.")?;
            let module = stem.strip_prefix("opencv_")?;
            Some(format!("libopencv-{}{version}", module.replace('_', "-")))
        })
        .collect();
    assert!(!opencv.is_empty(), "the binary links OpenCV:\n{dynamic}");
    for package in &opencv {
        assert!(
            packages.contains(package),
            "the binary links {package}'s library, which the edge stage does not install ({packages:?})"
        );
    }
    // The cascades haar_detect loads by name.
    assert!(packages.contains("opencv-data"));
}

#[test]
fn the_packages_the_image_installs_exist_in_debian_12() {
    let release = std::fs::read_to_string("/etc/debian_version").unwrap_or_default();
    if !release.starts_with("12.") {
        eprintln!("SKIPPED: this is not Debian 12 (bookworm), the image's base: {release}");
        return;
    }
    for package in SHIPPED.into_iter().flat_map(packages) {
        let found = Command::new("apt-cache")
            .args(["show", "--no-all-versions", &package])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
        assert!(found, "bookworm has no package {package}");
    }
}

/// The node types a spec uses (its `type:` lines).
fn node_types(spec: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(spec)
        .unwrap()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("type:"))
        .map(|t| t.trim().to_owned())
        .collect()
}

#[test]
fn the_cloud_image_is_built_without_opencv_and_runs_specs_that_need_none() {
    // The build stage strips a second build, without the vision feature,
    // to the file the cloud stage ships.
    let build = stages().remove(0).1;
    let builds: String = build
        .iter()
        .filter(|(word, rest)| word == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest.as_str())
        .collect();
    let slim = builds
        .find("--no-default-features")
        .map(|at| &builds[at..])
        .expect("the build stage builds flowrun with --no-default-features");
    let cloud = image("cloud").1;
    let shipped = cloud
        .iter()
        .find(|(word, rest)| word == "COPY" && rest.starts_with("--from="))
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .expect("the cloud stage copies a binary from the build stage");
    assert!(
        slim.contains(&format!("-o {shipped}")),
        "the cloud stage ships {shipped}, which is not the build without OpenCV"
    );
    let packages = packages("cloud");
    assert!(
        packages.iter().all(|p| !p.contains("opencv")),
        "the cloud stage installs OpenCV: {packages:?}"
    );

    // Each compose file builds its side's image.
    for (file, vars, target) in [(EDGE, EDGE_REQUIRED, "edge"), (CLOUD, CLOUD_VARS, "cloud")] {
        let config = valid_config(file, None, vars);
        assert_eq!(
            config["services"]["flowrun"]["build"]["target"], target,
            "{file}"
        );
    }

    // What the cloud image runs, by compose or by default, uses no node
    // type that build lacks.
    let cmd = &cloud
        .iter()
        .rev()
        .find(|(word, _)| word == "CMD")
        .expect("the cloud stage has a CMD")
        .1;
    let cmd: Vec<Value> = serde_json::from_str(cmd).expect("CMD in exec form");
    let default_spec = in_repository(cmd.last().and_then(Value::as_str).unwrap());
    let config = valid_config(CLOUD, None, CLOUD_VARS);
    let specs = flowrun_services(&config)
        .into_iter()
        .map(|(spec, _)| spec)
        .chain([default_spec]);
    for spec in specs {
        let needs: Vec<String> = node_types(&spec)
            .into_iter()
            .filter(|t| flowrun_nodes::VISION_TYPES.contains(&t.as_str()))
            .collect();
        assert!(
            needs.is_empty(),
            "the cloud image runs {}, which needs {needs:?}",
            spec.display()
        );
    }
}
