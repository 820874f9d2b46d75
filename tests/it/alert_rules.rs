//! The alert rules fire when they should and only then: `promtool test
//! rules` runs deploy/prometheus/alerts.test.yml, and every alert in
//! deploy/prometheus/alerts.yml has a case where it fires and one where it
//! stays quiet. promtool is Debian's (`scripts/install-topology-tools`).

use std::collections::BTreeSet;

use anyhow::Context as _;
use hookline_tests::topology::runtime::host_tool;
use hookline_tests::workspace_root;
use serde_yaml::Value;

fn yaml(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(workspace_root().join(path)).context(path.to_owned())?;
    Ok(serde_yaml::from_str(&text)?)
}

fn promtool(args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new(host_tool("promtool")?)
        .args(args)
        .current_dir(workspace_root())
        .output()?;
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_case() -> anyhow::Result<()> {
    let alerts: BTreeSet<String> = yaml("deploy/prometheus/alerts.yml")?["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_sequence().into_iter().flatten())
        .filter_map(|rule| rule["alert"].as_str().map(str::to_owned))
        .collect();
    assert!(alerts.len() >= 9, "{alerts:?}");
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for test in yaml("deploy/prometheus/alerts.test.yml")?["tests"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap_or_default().to_owned();
            let fires = case["exp_alerts"]
                .as_sequence()
                .is_some_and(|expected| !expected.is_empty());
            if fires { &mut firing } else { &mut quiet }.insert(name);
        }
    }
    let without_firing: Vec<_> = alerts.difference(&firing).collect();
    let without_quiet: Vec<_> = alerts.difference(&quiet).collect();
    assert!(
        without_firing.is_empty(),
        "no firing case: {without_firing:?}"
    );
    assert!(without_quiet.is_empty(), "no quiet case: {without_quiet:?}");
    let unknown: Vec<_> = firing
        .union(&quiet)
        .filter(|a| !alerts.contains(*a))
        .collect();
    assert!(
        unknown.is_empty(),
        "cases for alerts that do not exist: {unknown:?}"
    );
    Ok(())
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() -> anyhow::Result<()> {
    promtool(&["check", "rules", "deploy/prometheus/alerts.yml"])?;
    promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"])
}
