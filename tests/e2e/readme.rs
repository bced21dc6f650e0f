//! The README tells the truth: every `cargo xtask` command in it, and in the CI workflow example,
//! runs as written and succeeds (off-site copies go to the test's S3 server); the bucket lifecycle
//! rule and the permissions it shows are what S3 takes.

use std::path::Path;
use std::process::{Command, Stdio};

use testkit::s3::s3_server;
use testkit::TestDb;

/// The bucket the README's examples send copies to.
const README_BUCKET: &str = "toefl-backups";

/// The fenced blocks of `markdown` tagged `tag`.
fn blocks<'a>(markdown: &'a str, tag: &str) -> Vec<&'a str> {
    let fence = format!("```{tag}\n");
    markdown
        .split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect()
}

/// The `run:` scripts of a GitHub workflow's steps (one-line or `|` blocks).
fn workflow_scripts(yaml: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((indent, rest)) = line.split_once("run: ") else {
            continue;
        };
        if rest != "|" {
            scripts.push(rest.to_string());
            continue;
        }
        let mut script = String::new();
        while let Some(next) =
            lines.next_if(|l| l.len() > indent.len() + 2 && l.starts_with(indent))
        {
            script.push_str(next.trim_start());
            script.push('\n');
        }
        scripts.push(script);
    }
    scripts
}

/// Runs `script` with bash in `dir`, where `cargo xtask` is the binary under test.
fn run(script: &str, dir: &Path, env: &[(&str, String)]) {
    let prelude = "cargo() { [ \"$1\" = xtask ] && shift; \"$XTASK\" \"$@\"; }\n";
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c"])
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_command_in_the_readme_and_the_workflow_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let workflow =
        std::fs::read_to_string(root.join(".github/workflows/backup-before-deploy.yml")).unwrap();
    let dev = TestDb::sqlite();
    let production = TestDb::postgres();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    s3_server().create_bucket_named(README_BUCKET);
    let aws = s3_server().env().into_iter();
    let aws = aws.map(|(name, value)| (name, value.into_string().unwrap()));
    let env: Vec<(&str, String)> = [
        ("DATABASE_URL", dev.url_arg()),
        ("PRODUCTION_DATABASE_URL", production.url_arg()),
        (
            "TOEFL_BACKUPS_DIR",
            dir.path().join("backups").display().to_string(),
        ),
        (
            "GITHUB_ENV",
            dir.path().join("github_env").display().to_string(),
        ),
    ]
    .into_iter()
    .chain(aws)
    .collect();

    let mut ran = 0;
    for block in blocks(&readme, "sh") {
        run(block, dir.path(), &env);
        ran += block.matches("cargo xtask").count();
    }
    for line in blocks(&readme, "crontab").iter().flat_map(|b| b.lines()) {
        // Five schedule fields, then the command; the `cd` is to the checkout, here the test's.
        let command = line.splitn(6, ' ').nth(5).unwrap();
        let command = command.split_once(" && ").map_or(command, |(_, c)| c);
        run(command, dir.path(), &env);
        ran += 1;
    }
    for block in blocks(&readme, "yaml") {
        for line in block
            .lines()
            .filter_map(|l| l.trim().strip_prefix("preDeployCommand: "))
        {
            run(line, dir.path(), &env);
            ran += line.matches("cargo xtask").count();
        }
        // A workflow step shown in the README.
        for script in workflow_scripts(block) {
            run(&script, dir.path(), &env);
            ran += script.matches("cargo xtask").count();
        }
    }
    for script in workflow_scripts(&workflow)
        .iter()
        .filter(|s| s.contains("cargo xtask"))
    {
        run(script, dir.path(), &env);
        ran += script.matches("cargo xtask").count();
    }
    assert!(ran >= 30, "the README's examples ran ({ran} commands)");
    let keys = s3_server().keys(README_BUCKET);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("production/toefl_export_")),
        "the exports went to the bucket: {keys:?}"
    );
    assert_eq!(
        production.query_i64("SELECT count(*) FROM students"),
        1000,
        "dev data moved"
    );
    let log = std::fs::read_to_string(dir.path().join("backups/exports.log")).unwrap();
    assert!(log.contains("\"ok\":true"), "the cron line's JSON: {log}");
}

/// Python, with boto3: applies the lifecycle rule in argv[1] to the bucket argv[2] through the AWS
/// SDK (which checks its shape) and prints the rule S3 then holds.
const PUT_LIFECYCLE: &str = "
import boto3, json, os, sys
s3 = boto3.client('s3', endpoint_url=os.environ['ENDPOINT'])
s3.put_bucket_lifecycle_configuration(Bucket=sys.argv[2], LifecycleConfiguration=json.loads(sys.argv[1]))
rule = s3.get_bucket_lifecycle_configuration(Bucket=sys.argv[2])['Rules'][0]
print(rule['AbortIncompleteMultipartUpload']['DaysAfterInitiation'], rule['Filter']['Prefix'])
";

/// Python, with boto3: creates an IAM policy from the document in argv[1] (moto checks its grammar,
/// as IAM does) and prints its actions, one per line.
const CREATE_POLICY: &str = "
import boto3, json, os, sys, uuid
iam = boto3.client('iam', endpoint_url=os.environ['ENDPOINT'])
iam.create_policy(PolicyName='toefl-' + uuid.uuid4().hex, PolicyDocument=sys.argv[1])
for statement in json.loads(sys.argv[1])['Statement']:
    print('\\n'.join(statement['Action']))
";

#[test]
fn the_readme_lifecycle_rule_and_permissions_are_what_s3_takes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let json = blocks(&readme, "json");
    let lifecycle: Vec<&&str> = json.iter().filter(|b| b.contains("\"Rules\"")).collect();
    let bucket = s3_server().create_bucket();
    let applied = s3_server().python(PUT_LIFECYCLE, &[lifecycle[0], &bucket]);
    assert_eq!(applied.trim(), "1 production/");

    let policies: Vec<&&str> = json
        .iter()
        .filter(|b| b.contains("\"Statement\""))
        .collect();
    assert_eq!(policies.len(), 2, "one key for every day, one that prunes");
    let actions = |policy: &str| -> Vec<String> {
        let printed = s3_server().python(CREATE_POLICY, &[policy]);
        printed.lines().map(String::from).collect()
    };
    let daily = actions(policies[0]);
    let pruning = actions(policies[1]);
    assert!(!daily.contains(&"s3:DeleteObject".to_string()), "{daily:?}");
    for needed in ["s3:PutObject", "s3:GetObject", "s3:ListBucket"] {
        assert!(daily.contains(&needed.to_string()), "{needed}: {daily:?}");
    }
    assert!(
        pruning.contains(&"s3:DeleteObject".to_string()),
        "{pruning:?}"
    );
    assert!(
        !pruning.contains(&"s3:PutObject".to_string()),
        "{pruning:?}"
    );
}
