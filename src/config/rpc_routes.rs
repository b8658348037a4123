//! Which HTTP backend serves which `rpc` method (`rpc_url`, `rpc_methods`): made from the
//! configuration, checked when it is validated, and used by shards to route each call.

use hyper::Uri;

use super::Config;

/// Which backend serves which method, and the subscribe and publish proxies.
#[derive(Debug)]
pub struct Routes {
    default: Option<Uri>,
    /// (pattern, backend), the longest pattern first: the first match is the most specific.
    methods: Vec<(String, Uri)>,
    pub subscribe_proxy: Option<Uri>,
    pub publish_proxy: Option<Uri>,
    pub connect_proxy: Option<Uri>,
}

impl Routes {
    /// The routes of `rpc_url` and `rpc_methods`, or why a URL cannot be used.
    pub fn new(config: &Config) -> Result<Routes, String> {
        let default = config.rpc_url.as_deref().map(parse_url).transpose()?;
        let mut methods = config
            .rpc_methods
            .iter()
            .map(|(pattern, url)| {
                if pattern.is_empty() {
                    return Err("an empty method pattern (use rpc_url for every method)".into());
                }
                Ok((pattern.clone(), parse_url(url)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        methods.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let proxy = |url: &Option<String>| url.as_deref().map(parse_url).transpose();
        Ok(Routes {
            default,
            methods,
            subscribe_proxy: proxy(&config.subscribe_proxy_url)?,
            publish_proxy: proxy(&config.publish_proxy_url)?,
            connect_proxy: proxy(&config.connect_proxy_url)?,
        })
    }

    /// True when at least one method or proxy has a backend.
    pub fn any(&self) -> bool {
        self.backends().next().is_some()
    }

    /// Every backend (of rpc methods and of the proxies), each once.
    pub fn backends(&self) -> impl Iterator<Item = &Uri> {
        let mut seen: Vec<&Uri> = Vec::new();
        let rpc = self
            .default
            .iter()
            .chain(self.methods.iter().map(|(_, u)| u));
        let proxies = self
            .subscribe_proxy
            .iter()
            .chain(self.publish_proxy.iter())
            .chain(self.connect_proxy.iter());
        for uri in rpc.chain(proxies) {
            if !seen.contains(&uri) {
                seen.push(uri);
            }
        }
        seen.into_iter()
    }

    /// The backend for `method`: the longest matching pattern, else `rpc_url`.
    pub fn backend(&self, method: &str) -> Option<&Uri> {
        self.methods
            .iter()
            .find(|(pattern, _)| crate::channel::pattern_matches(pattern, method))
            .map(|(_, uri)| uri)
            .or(self.default.as_ref())
    }
}

/// An `http://` or `https://host[:port]/path` URL.
fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(format!("{url:?}: expected http(s)://host[:port]/path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(default: Option<&str>, methods: &[(&str, &str)]) -> Config {
        Config {
            rpc_url: default.map(String::from),
            rpc_methods: methods
                .iter()
                .map(|(p, u)| (p.to_string(), u.to_string()))
                .collect(),
            ..Config::default()
        }
    }

    #[test]
    fn the_longest_matching_pattern_wins_then_the_default() {
        let routes = Routes::new(&config(
            Some("http://all:1/rpc"),
            &[
                ("game.*", "http://game:1/rpc"),
                ("game.admin.*", "http://admin:1/rpc"),
                ("chat.report", "http://mod:1/rpc"),
            ],
        ))
        .unwrap();
        let host = |m: &str| routes.backend(m).map(|u| u.host().unwrap().to_string());
        assert_eq!(host("game.move").as_deref(), Some("game"));
        assert_eq!(host("game.admin.kick").as_deref(), Some("admin"));
        assert_eq!(host("chat.report").as_deref(), Some("mod"));
        assert_eq!(host("chat.reports").as_deref(), Some("all"));
        assert_eq!(host("other").as_deref(), Some("all"));

        let only = Routes::new(&config(None, &[("game.*", "http://game:1/rpc")])).unwrap();
        assert!(only.backend("lobby.join").is_none());
        assert!(!Routes::new(&config(None, &[])).unwrap().any());
    }

    #[test]
    fn only_http_and_https_urls_are_taken() {
        assert!(Routes::new(&config(Some("https://game/rpc"), &[])).is_ok());
        for bad in ["game:7000/rpc", "not a url", "ftp://x/"] {
            assert!(Routes::new(&config(Some(bad), &[])).is_err(), "{bad}");
            assert!(Routes::new(&config(None, &[("m", bad)])).is_err(), "{bad}");
        }
        assert!(Routes::new(&config(None, &[("", "http://a/")])).is_err());
    }
}
