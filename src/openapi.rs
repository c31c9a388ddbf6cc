//! keygate's security schemes in your own OpenAPI document (feature `openapi`): one per
//! configured key source, so that generated clients and API explorers send the key where
//! the layer reads it.

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};

use crate::config::Keygate;
use crate::store::key_store::KeyStore;

impl<S: KeyStore> Keygate<S> {
    /// Adds a security scheme for each key source to `document` (`http` `bearer` for
    /// `Authorization: Bearer`, `apiKey` in the header for a named header), and requires
    /// one of them on every operation; returns the schemes' names
    /// (`keygate_bearer`, `keygate_<header>`).
    ///
    /// ```
    /// use keygate::{KeyManager, KeySource, Keygate, MemoryStore};
    /// use utoipa::openapi::OpenApiBuilder;
    ///
    /// let keygate = Keygate::new(MemoryStore::new())
    ///     .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?;
    /// let mut document = OpenApiBuilder::new().build();
    /// document.merge(KeyManager::openapi_at("/api-keys"));
    /// let names = keygate.add_security_schemes(&mut document);
    /// assert_eq!(names, ["keygate_bearer", "keygate_x-api-key"]);
    /// # Ok::<(), keygate::ConfigError>(())
    /// ```
    pub fn add_security_schemes(&self, document: &mut OpenApi) -> Vec<String> {
        let components = document.components.get_or_insert_with(Default::default);
        let mut names = Vec::new();
        for source in self.sources() {
            let (name, scheme) = if source.is_bearer() {
                let scheme = HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer <key>`"))
                    .build();
                ("keygate_bearer".to_owned(), SecurityScheme::Http(scheme))
            } else {
                let header = source.header_name().as_str();
                let value = ApiKeyValue::with_description(
                    header,
                    &format!("An API key in the `{header}` header"),
                );
                (
                    format!("keygate_{header}"),
                    SecurityScheme::ApiKey(ApiKey::Header(value)),
                )
            };
            components.add_security_scheme(name.clone(), scheme);
            names.push(name);
        }
        // Each requirement alone suffices: the layer takes the key from any one source.
        let requirements = names
            .iter()
            .map(|name| SecurityRequirement::new(name.clone(), Vec::<String>::new()));
        document
            .security
            .get_or_insert_with(Vec::new)
            .extend(requirements);
        names
    }
}
