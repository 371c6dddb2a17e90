//! The deploy artifacts cannot run here (no Docker engine, no cluster), so
//! they are checked by parsing: the manifests are well-formed, every
//! reference resolves, the probes hit routes that answer, the ports match
//! the config, and the image is multi-stage and non-root.

use std::time::Duration;

use crate::support::{Bff, TestApp};
use bff_core::config::{Config, ConfigSources};
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
    let config = Config::load_unvalidated(&ConfigSources {
        defaults_toml: spec.default_config,
        file: None,
        env: false,
        overrides_toml: Some(toml),
    })
    .unwrap_or_else(|e| panic!("{name}'s ConfigMap is not a valid config: {e}"));

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
