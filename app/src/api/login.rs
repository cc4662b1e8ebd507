use super::AppError;
use leptos::prelude::*;

/// Logs in with a username and password, then sends the browser to `next` (a local path only).
#[server(endpoint = "login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::{context, run, session};
    use crate::auth;
    run(async {
        let ctx = context()?;
        let ip = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .ok()
            .map(|c| c.0.ip());
        let user =
            auth::authenticate(&ctx.pool, &ctx.login_policy, &username, &password, ip).await?;
        auth::start_session(&session().await?, &user).await?;
        leptos_axum::redirect(&safe_next(next.as_deref()));
        Ok(())
    })
    .await
}

/// Only a path on this site. The URL standard drops tabs and newlines anywhere and reads `\`
/// as `/`, so `/\t/evil.example` or `/\\evil.example` would leave the site: anything a browser
/// would rewrite (control characters, spaces, backslashes, encoded slashes), or a second
/// leading slash, sends the user home instead. Non-ASCII is percent-encoded, so the result is
/// always a valid `Location`.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(p) = next else {
        return "/".into();
    };
    let lower = p.to_ascii_lowercase();
    let local = p.starts_with('/')
        && !p[1..].starts_with('/')
        && !p
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !["%2f", "%5c", "%09", "%0a", "%0d", "%00"]
            .iter()
            .any(|e| lower.contains(e));
    if !local {
        return "/".into();
    }
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_next;
    use proptest::prelude::*;

    #[test]
    fn next_is_kept_only_when_it_is_a_local_path() {
        assert_eq!(safe_next(Some("/users")), "/users");
        assert_eq!(
            safe_next(Some("/tasks?status=failed#top")),
            "/tasks?status=failed#top"
        );
        assert_eq!(safe_next(Some("/café")), "/caf%C3%A9");
        for evil in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/%2F/evil.example",
            "/%5cevil.example",
            " /evil",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    proptest! {
        /// Whatever comes in, what goes out is a header-safe path that a browser resolves on
        /// this site: one leading slash, no byte the URL parser would drop or reinterpret.
        #[test]
        fn whatever_comes_in_stays_on_the_site(raw in "\\PC*|[/\\\\\t\n%a-f0-9.]*") {
            let out = safe_next(Some(&raw));
            prop_assert!(out.starts_with('/'));
            prop_assert!(!out[1..].starts_with('/'));
            prop_assert!(out.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\'));
        }
    }
}
