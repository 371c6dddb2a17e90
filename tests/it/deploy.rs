//! The deploy artifacts cannot run here (no Docker engine, no cluster), so
//! they are checked by parsing: the manifests are well-formed, every
//! reference resolves, the probes hit routes that answer, the ports match
//! the config, and the image is multi-stage and non-root.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Bff, TestApp, keys};
use bff_core::config::{Config, ConfigSources};
use bff_core::run::{BffSpec, assemble};
use reqwest::StatusCode;
use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn manifests(bff: &str) -> Vec<Yaml> {
    let path = format!("{ROOT}/deploy/{bff}.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

/// The one document of `kind`.
fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let mut found = docs.iter().filter(|d| d["kind"].as_str() == Some(kind));
    let doc = found.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(found.next().is_none(), "more than one {kind}");
    doc
}

fn str_of<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {yaml:?}"))
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).expect("seconds")
}

/// The container's environment as the kubelet sets it: literal values,
/// and values taken from the Secret.
fn pod_env(container: &Yaml, secret: &Yaml) -> Vec<(String, String)> {
    container["env"]
        .as_vec()
        .expect("env")
        .iter()
        .map(|e| {
            let name = str_of(&e["name"], "env name").to_owned();
            let value = match e["value"].as_str() {
                Some(value) => value.to_owned(),
                None => {
                    let from = &e["valueFrom"]["secretKeyRef"];
                    assert_eq!(from["name"], secret["metadata"]["name"], "{name}");
                    let key = str_of(&from["key"], "secret key");
                    str_of(&secret["stringData"][key], "secret value").to_owned()
                }
            };
            (name, value)
        })
        .collect()
}

/// The config a BFF starts with from `file` and `env`: its defaults, the
/// file, then the environment, by the binary's rule for `BFF_*` names
/// (`BFF_AUTH__PUBLIC_KEY_PEM` is `auth.public_key_pem`). The variables
/// become the last TOML layer, since the test must not set its own
/// process environment; every value here is a string either way.
fn start_config(spec: BffSpec, file: &str, env: &[(String, String)]) -> Result<Config, String> {
    let dir = std::env::temp_dir().join(format!("bff-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // One file per call: tests run concurrently.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{}-{n}.toml", spec.name));
    std::fs::write(&path, file).map_err(|e| e.to_string())?;
    let overrides: String = env
        .iter()
        .map(|(name, value)| {
            let key = name
                .strip_prefix("BFF_")
                .unwrap_or_else(|| panic!("{name} is not a BFF_ variable"))
                .to_ascii_lowercase()
                .replace("__", ".");
            let value = serde_json::to_string(value).expect("a JSON string is a TOML string");
            format!("{key} = {value}\n")
        })
        .collect();
    let config = Config::load_unvalidated(&ConfigSources {
        defaults_toml: spec.default_config,
        file: Some(&path),
        env: false,
        overrides_toml: Some(&overrides),
    });
    let _ = std::fs::remove_file(&path);
    config.map_err(|e| e.to_string())
}

async fn check(bff: Bff, name: &str) {
    let docs = manifests(name);
    for doc in &docs {
        assert!(doc["apiVersion"].as_str().is_some(), "{doc:?}");
        assert!(doc["metadata"]["name"].as_str().is_some(), "{doc:?}");
    }
    let config_map = of_kind(&docs, "ConfigMap");
    let secret = of_kind(&docs, "Secret");
    let deployment = of_kind(&docs, "Deployment");
    let service = of_kind(&docs, "Service");
    let hpa = of_kind(&docs, "HorizontalPodAutoscaler");

    let pod = &deployment["spec"]["template"];
    let containers = pod["spec"]["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];

    // The config file the container reads is the ConfigMap's, and the
    // binary accepts it: no unknown keys, sane values.
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| str_of(a, "arg"))
        .collect();
    assert_eq!(args.first(), Some(&"--config"));
    let config_path = std::path::Path::new(args[1]);
    let mount = container["volumeMounts"]
        .as_vec()
        .expect("volume mounts")
        .iter()
        .find(|m| {
            Some(str_of(&m["mountPath"], "mountPath"))
                == config_path.parent().and_then(|p| p.to_str())
        })
        .expect("the config file's directory is mounted");
    let volume = pod["spec"]["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume exists");
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let file = config_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file name");
    let toml = str_of(&config_map["data"][file], "the config file");
    let spec = match bff {
        Bff::Web => bff_web::SPEC,
        Bff::Mobile => bff_mobile::SPEC,
    };
    let env = pod_env(container, secret);
    let config = start_config(spec, toml, &env)
        .unwrap_or_else(|e| panic!("{name}'s ConfigMap is not a valid config: {e}"));

    // Checked as the binary checks at start (`--check`): with the Secret
    // as shipped, a placeholder the operator replaces, the pod would exit
    // naming the key; with a real key it starts. A ConfigMap without an
    // upstream its routes call would not.
    let refused = assemble(spec, config.clone(), None)
        .expect_err("a pod must not start with the Secret's placeholder key");
    assert!(refused.contains("public_key_pem"), "{refused}");
    let real_key: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| match name.as_str() {
            "BFF_AUTH__PUBLIC_KEY_PEM" => (name.clone(), keys::p256().public_pem.clone()),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    let started = start_config(spec, toml, &real_key).expect("loads");
    if let Err(error) = assemble(spec, started, None) {
        panic!("{name}'s pod would exit at start: {error}");
    }
    let without_orders = toml.replace("[upstreams.orders]", "[upstreams.unused]");
    let incomplete = start_config(spec, &without_orders, &real_key).expect("loads");
    let refused = assemble(spec, incomplete, None)
        .expect_err("a ConfigMap without the orders upstream is refused");
    assert!(refused.contains("upstreams.orders"), "{refused}");

    // Ports: the container's is the config's, and the Service and probes use it.
    let port = &container["ports"].as_vec().expect("ports")[0];
    let port_name = str_of(&port["name"], "port name");
    assert_eq!(
        port["containerPort"].as_i64(),
        Some(i64::from(config.listen.port()))
    );
    let service_port = &service["spec"]["ports"].as_vec().expect("ports")[0];
    assert_eq!(str_of(&service_port["targetPort"], "targetPort"), port_name);
    assert_eq!(
        service["spec"]["selector"], pod["metadata"]["labels"],
        "the Service selects the pods"
    );
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        pod["metadata"]["labels"]
    );

    // Probes: real routes that answer 200 on a running BFF.
    let app = TestApp::spawn(bff).await;
    for (probe, route) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(str_of(&get["path"], "probe path"), route, "{probe}");
        assert_eq!(str_of(&get["port"], "probe port"), port_name, "{probe}");
        assert_eq!(
            app.get(route, None).await.status(),
            StatusCode::OK,
            "{route}"
        );
    }
    let scrape = &pod["metadata"]["annotations"];
    assert_eq!(
        app.get(str_of(&scrape["prometheus.io/path"], "path"), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        str_of(&scrape["prometheus.io/port"], "port"),
        config.listen.port().to_string()
    );

    // The token key comes from the Secret.
    let from_secret = container["env"]
        .as_vec()
        .expect("env")
        .iter()
        .find_map(|e| {
            e["valueFrom"]["secretKeyRef"]
                .as_hash()
                .map(|_| &e["valueFrom"]["secretKeyRef"])
        })
        .expect("an env var from the Secret");
    assert_eq!(from_secret["name"], secret["metadata"]["name"]);
    let key = str_of(&from_secret["key"], "secret key");
    assert!(
        secret["stringData"][key].as_str().is_some(),
        "the Secret has `{key}`"
    );

    // Resources, non-root, and time to drain before the kill.
    let requests = &container["resources"]["requests"];
    assert!(requests["cpu"].as_str().is_some() && requests["memory"].as_str().is_some());
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    assert!(pod["spec"]["securityContext"]["runAsUser"].as_i64() > Some(0));
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace period");
    assert!(
        grace > seconds(config.http.drain_delay) + seconds(config.http.drain_timeout),
        "the pod is killed before it has drained"
    );

    // The autoscaler scales this Deployment.
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"],
        Yaml::String("Deployment".into())
    );
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert!(hpa["spec"]["minReplicas"].as_i64() <= hpa["spec"]["maxReplicas"].as_i64());

    // Shared state: the Redis of deploy/redis.yaml, by its Service's name
    // and port, with its password; while Redis is down each replica admits
    // its share of the quota as if the HPA's minimum were running.
    let redis = manifests("redis");
    let redis_service = of_kind(&redis, "Service");
    let redis_secret = of_kind(&redis, "Secret");
    let redis_pod = &of_kind(&redis, "Deployment")["spec"]["template"];
    assert_eq!(
        redis_service["spec"]["selector"],
        redis_pod["metadata"]["labels"]
    );
    let url = config
        .shared_state
        .redis_url
        .as_ref()
        .expect("shared_state.redis_url is set from the Secret");
    let url = url::Url::parse(url.expose()).expect("a URL");
    assert_eq!(url.scheme(), "redis");
    assert_eq!(url.host_str(), redis_service["metadata"]["name"].as_str());
    assert_eq!(
        url.port().map(i64::from),
        redis_service["spec"]["ports"][0]["port"].as_i64()
    );
    assert_eq!(
        url.password(),
        redis_secret["stringData"]["password"].as_str()
    );
    assert_eq!(
        Some(i64::from(config.shared_state.replicas_hint.get())),
        hpa["spec"]["minReplicas"].as_i64()
    );
}

#[tokio::test]
async fn bff_web_manifests_are_consistent() {
    check(Bff::Web, "bff-web").await;
}

#[tokio::test]
async fn bff_mobile_manifests_are_consistent() {
    check(Bff::Mobile, "bff-mobile").await;
}

#[test]
fn the_dockerfile_builds_either_bff_into_a_small_non_root_image() {
    let text = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).expect("Dockerfile");
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(op, rest)| (op.to_ascii_uppercase(), rest.trim().to_owned()))
        .collect();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "multi-stage build");
    let last = &instructions[*stages.last().expect("a stage")..];
    let user = last
        .iter()
        .find(|(op, _)| op == "USER")
        .map(|(_, user)| user.split(':').next().unwrap_or_default().to_owned())
        .expect("the runtime stage sets USER");
    assert!(
        user.parse::<u32>().is_ok_and(|uid| uid != 0),
        "non-root: {user}"
    );
    assert!(last.iter().any(|(op, _)| op == "ENTRYPOINT"));
    let expose = last
        .iter()
        .find(|(op, _)| op == "EXPOSE")
        .map(|(_, port)| port.clone())
        .expect("EXPOSE");
    let listen: std::net::SocketAddr = Config::default().listen;
    assert_eq!(expose, listen.port().to_string());
    // Either BFF is built by the build argument.
    assert!(text.contains("ARG BFF="));
    // The image leaves the demo and the test kit out.
    assert!(text.contains("cargo build --release --locked --no-default-features -p \"${BFF}\""));
    for bff in ["bff-web", "bff-mobile"] {
        assert!(
            std::path::Path::new(&format!("{ROOT}/{bff}/Cargo.toml")).exists(),
            "{bff}"
        );
    }
}

#[tokio::test]
async fn the_compose_file_runs_each_bff_in_demo_mode_reachable_from_the_host() {
    let path = format!("{ROOT}/docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let services = docs[0]["services"].as_hash().expect("services");
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).expect("Dockerfile");
    let mut seen = Vec::new();
    for (name, service) in services {
        let name = str_of(name, "service name");
        let args = &service["build"]["args"];
        let bff = str_of(&args["BFF"], "build arg BFF");
        let spec = match bff {
            "bff-web" => bff_web::SPEC,
            "bff-mobile" => bff_mobile::SPEC,
            other => panic!("{name}: no BFF named {other}"),
        };
        // The image has the demo built in, by an argument the Dockerfile reads.
        assert_eq!(str_of(&args["FEATURES"], "build arg FEATURES"), "demo");
        assert!(
            dockerfile.contains("ARG FEATURES="),
            "the Dockerfile reads FEATURES"
        );
        let command: Vec<&str> = service["command"]
            .as_vec()
            .expect("command")
            .iter()
            .map(|a| str_of(a, "command word"))
            .collect();
        assert_eq!(command, ["--demo"], "{name}");
        let env: Vec<(String, String)> = service["environment"]
            .as_hash()
            .expect("environment")
            .iter()
            .map(|(k, v)| {
                (
                    str_of(k, "variable").to_owned(),
                    str_of(v, "value").to_owned(),
                )
            })
            .collect();

        // As the binary starts with --demo: the demo's upstreams and keys,
        // then every start-up check.
        let mut config = start_config(spec, "", &env).unwrap_or_else(|e| panic!("{name}: {e}"));
        let start = spec.demo.expect("the test build has the demo");
        let demo = start().await.expect("the demo starts");
        let mint = bff_core::run::apply_demo(&mut config, demo.as_ref()).expect("demo config");
        assert!(
            config.listen.ip().is_unspecified(),
            "{name}: reachable from outside its container, not {}",
            config.listen
        );
        let ports: Vec<&str> = service["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .map(|p| str_of(p, "port"))
            .collect();
        assert_eq!(
            ports,
            [format!("127.0.0.1:{0}:{0}", config.listen.port())],
            "{name}: the container's port published on the host's loopback"
        );
        if let Err(error) = assemble(spec, config, Some(mint)) {
            panic!("{name} would exit at start: {error}");
        }
        seen.push(bff);
    }
    seen.sort_unstable();
    assert_eq!(seen, ["bff-mobile", "bff-web"]);

    // Without a chosen address, the demo stays on this machine.
    let mut config = start_config(bff_web::SPEC, "", &[]).expect("defaults");
    let demo = (bff_web::SPEC.demo.expect("demo"))().await.expect("starts");
    bff_core::run::apply_demo(&mut config, demo.as_ref()).expect("demo config");
    assert!(config.listen.ip().is_loopback(), "{}", config.listen);
}
