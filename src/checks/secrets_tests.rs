use super::*;
use serde_json::json;

fn kinds(t: &str) -> Vec<&'static str> {
    find_secrets(t).into_iter().map(|h| h.kind).collect()
}

#[test]
fn detects_each_kind() {
    let cases = [
        ("id AKIAIOSFODNN7EXAMPLE here", "aws_access_key_id"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key"),
        (r#""SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY""#, "aws_secret_access_key"),
        (r#""private_key_id": "0123456789abcdef0123456789abcdef01234567""#, "gcp_private_key_id"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "private_key"),
        (r#""private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n""#, "private_key"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE (truncated", "private_key"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", "pgp_private_key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA...\n-----END OPENSSH PRIVATE KEY-----", "ssh_private_key"),
        ("PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\nPrivate-MAC: 0a1b2c", "ssh_private_key"),
        ("key=AIzaSyD-1234567890abcdefghijklmnopqrstu", "gcp_api_key"),
        ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy==;EndpointSuffix=core.windows.net", "azure_connection_string"),
        ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=", "azure_connection_string"),
        ("https://a.blob.core.windows.net/c?sv=2022-11-02&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2B%2F%3D", "azure_sas_token"),
        ("secret: abc8Q~abcdefghijklmnopqrstuvwxyz0123456", "azure_client_secret"),
        ("GITHUB_TOKEN=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "github_token"),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "github_token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_token"),
        ("glpat-xxxxxxxxxxxxxxxxxxxx", "gitlab_token"),
        ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack_token"),
        ("xapp-1-A0123456789-0123456789012-abcdef", "slack_token"),
        ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "stripe_webhook_secret"),
        ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345-_abc", "anthropic_api_key"),
        ("OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrSt1234567890", "openai_api_key"),
        ("sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", "openai_api_key"),
        ("npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_token"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "huggingface_token"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
        ("Authorization: Bearer abcdef0123456789abcdef", "authorization_header"),
        ("postgres://app:s3cr3t@db.internal:5432/prod", "connection_string_password"),
        ("mongodb+srv://u:p%40ss@cluster0.mongodb.net/db", "connection_string_password"),
        ("redis://:hunter22@cache:6379/0", "connection_string_password"),
        ("amqp://guest:guest@rabbit:5672/", "connection_string_password"),
        ("jdbc:postgresql://db:5432/x?user=app&password=s3cr3t", "connection_string_password"),
        ("Server=tcp:db;Database=x;User Id=sa;Password=Pa55word!;", "connection_string_password"),
    ];
    for (text, kind) in cases {
        assert_eq!(kinds(text), vec![kind], "{text}");
    }
}

#[test]
fn ordinary_text_passes() {
    let mut img = String::new();
    let mut x: u32 = 12345;
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        img.push(B64[(x >> 16) as usize % 64] as char);
    }
    let texts = [
        "The quick brown fox jumps over the lazy dog. Use sk-learn for ML; see the task-list.",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "https://example.com/path?q=1&page=2 and postgres://db.example.com:5432/app",
        "http://user@host.example/ and mailto:someone@example.com",
        "password: (set in the vault)  the password is required",
        "AKIA is a prefix; AKIAshort",
        "The secret key is stored in the vault.",
        "eyJ is how base64 JSON starts",
        &img,
    ];
    for t in texts {
        assert_eq!(redact(t), None, "{}", &t[..t.len().min(80)]);
    }
}

#[test]
fn redacts_only_the_secret() {
    assert_eq!(
        redact("db: postgres://app:s3cr3t@db:5432/x ok").as_deref(),
        Some("db: postgres://app:[REDACTED:connection_string_password]@db:5432/x ok")
    );
    let t = "k=AKIAIOSFODNN7EXAMPLE\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\nbye";
    assert_eq!(
        redact(t).as_deref(),
        Some("k=[REDACTED:aws_access_key_id]\n[REDACTED:ssh_private_key]\nbye")
    );
}

#[test]
fn json_walker() {
    let mut v = json!({
        "content": [{"type": "text", "text": "token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"}],
        "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8": 1,
        "n": 5, "clean": "nothing here"
    });
    assert_eq!(find_secrets_in_json(&v), vec!["github_token"]);
    assert_eq!(redact_json(&mut v), vec!["github_token"]);
    assert_eq!(v["content"][0]["text"], "token [REDACTED:github_token]");
    assert_eq!(v["[REDACTED:github_token]"], 1);
    assert_eq!(v["clean"], "nothing here");
    let mut clean = json!({"a": ["b", 1, {"c": "d"}]});
    let before = clean.clone();
    assert!(redact_json(&mut clean).is_empty());
    assert_eq!(clean, before);
}

/// Source code an agent reads (filesystem, git diffs) or writes (write_file arguments are
/// refused on a hit): `password=` and `pwd =` assignments of code, not of secrets.
#[test]
fn code_assignments_and_placeholders_pass() {
    let texts = [
        "def connect(user, password=None):\n    pwd = os.getcwd()\n",
        "    if password is None:\n        password = getpass.getpass('Password: ')\n",
        "    return db.connect(user=user, password=password, cwd=pwd)",
        "password = os.environ[\"DB_PASSWORD\"]\npwd = Path.cwd()",
        "    self.password = password\n    password = self.password",
        "const password = process.env.DB_PASSWORD;\nlet pwd = std::env::current_dir()?;",
        "password: str = Field(default=None)\npassword = input(\"Password: \")",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
        "connect with postgres://user:password@localhost:5432/mydb (replace the placeholders)",
        "Set password=<your-password> in the config, or Password={{ vault_password }};",
        "headers = {\"Authorization\": f\"Bearer {token}\"}",
        "git clone git@github.com:org/repo.git && cd repo",
        "image: registry.example.com:5000/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ];
    for t in texts {
        assert_eq!(redact(t), None, "{t}");
    }
}

/// The code exceptions stop at literal values: real passwords in config and connection strings
/// are still found.
#[test]
fn literal_passwords_still_hit() {
    for t in [
        "password = hunter2",
        "Server=db;Database=app;User Id=sa;Password=Sup3rS3cret!;",
        "pwd=Tr0ub4dor&3",
        "postgres://app:s3cr3t@db:5432/x",
        "redis://:p4ssw0rd@cache:6379/0",
        "https://h.example/login?user=a&password=letmein99",
    ] {
        assert_eq!(kinds(t), vec!["connection_string_password"], "{t}");
    }
}
