//! An endpoint as plain data: fields, their sources, calls and their policies. Values keep their
//! tokens beside them so checks can point at the user's code.

pub(crate) use orchestrate_core::policy::Auth;
use proc_macro2::Span;
use quote::ToTokens;
use std::time::Duration;
use syn::{Expr, ExprCall, Ident, LitStr, Pat, Type};

/// HTTP method of an endpoint or call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "get" => Self::Get,
            "post" => Self::Post,
            "put" => Self::Put,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    pub(crate) fn upper(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Get => "Get",
            Self::Post => "Post",
            Self::Put => "Put",
            Self::Patch => "Patch",
            Self::Delete => "Delete",
        }
    }

    pub(crate) fn is_idempotent(self) -> bool {
        matches!(self, Self::Get | Self::Put | Self::Delete)
    }
}

/// A duration with the literal it came from.
#[derive(Clone)]
pub(crate) struct Timed {
    pub(crate) value: Duration,
    pub(crate) lit: LitStr,
}

pub(crate) struct Endpoint {
    pub(crate) ident: Ident,
    /// Whether the method and route parsed (without them the endpoint is only emitted as a
    /// stand-in, with `GET "/"`).
    pub(crate) head_ok: bool,
    pub(crate) method: HttpMethod,
    pub(crate) route: LitStr,
    pub(crate) timeout: Option<Timed>,
    /// Request body limit in bytes (`max_body = ".."`).
    pub(crate) max_body: Option<u64>,
    /// `cache(..)`: the assembled answer is cached.
    pub(crate) cache: Option<CacheAttr>,
    /// `rate_limit(..)`, with the module's limits merged in where the endpoint sets none.
    pub(crate) rate_limit: orchestrate_core::policy::RateLimits,
    /// `saga`: every side effect after which a required step can fail must have a compensation.
    pub(crate) saga: Option<Ident>,
    /// `slo(..)`: what the endpoint promises (read without a mistake).
    pub(crate) slo: Option<SloAttr>,
    /// `auth = ..` of the endpoint itself, with the word's span.
    pub(crate) auth: Option<(Auth, Span)>,
    /// `auth = ..` of the `#[api]` module the endpoint is in.
    pub(crate) module_auth: Option<Auth>,
    /// `idempotent_requests` / `idempotent_requests = false`: whether client retries with an
    /// `Idempotency-Key` are replayed (default: a POST with a side-effecting call).
    pub(crate) idempotent_requests: Option<bool>,
    /// `canary(..)`: the endpoint is a canary version of its route (read without a mistake).
    pub(crate) canary: Option<CanaryAttr>,
    /// `idempotent_requests(wait = "5s")`: how long a retry waits for the first response.
    pub(crate) idempotent_wait: Option<std::time::Duration>,
    pub(crate) fields: Vec<Field>,
}

impl Endpoint {
    /// Whether the endpoint requires a token: its own `auth`, else its module's.
    pub(crate) fn effective_auth(&self) -> Auth {
        self.auth.map(|(a, _)| a).or(self.module_auth).unwrap_or(Auth::None)
    }

    /// Whether client retries are replayed, given or by default.
    pub(crate) fn replays(&self) -> bool {
        self.idempotent_requests.unwrap_or_else(|| {
            let side_effect = self.fields.iter().any(|f| matches!(&f.kind, FieldKind::Call(c) if c.side_effect()));
            orchestrate_core::policy::idempotency::on_by_default(self.method.upper(), side_effect)
        })
    }
}

impl Endpoint {
    pub(crate) fn field(&self, name: &str) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.ident == name)
    }
}

pub(crate) struct Field {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) kind: FieldKind,
}

pub(crate) enum FieldKind {
    Input(Input),
    Call(Box<Call>),
    Compute(Compute),
    /// No `#[input]`, `#[call]` or `#[compute]` (already reported).
    Unknown,
}

impl FieldKind {
    pub(crate) fn is_node(&self) -> bool {
        matches!(self, Self::Call(_) | Self::Compute(_))
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum InputSource {
    Body,
    Path(String),
    Query,
    QueryParam(String),
    Header(String),
    /// A claim of the verified bearer token.
    Claim(String),
}

pub(crate) struct Input {
    pub(crate) source: InputSource,
    pub(crate) span: Span,
}

pub(crate) struct Compute {
    pub(crate) expr: Expr,
    pub(crate) uses: Vec<Ident>,
}

pub(crate) enum TemplatePart {
    Literal(String),
    Value { expr: Expr, in_query: bool },
}

pub(crate) enum CallTarget {
    Http { method: HttpMethod, key: Ident, template: LitStr, parts: Vec<TemplatePart> },
    With { call: ExprCall },
}

/// A call-level retry override.
pub(crate) struct CallRetry {
    pub(crate) key: Ident,
    pub(crate) policy: orchestrate_core::policy::RetryPolicy,
}

/// `hedge(after = "50ms", max = 1)` of a call.
pub(crate) struct CallHedge {
    pub(crate) key: Ident,
    pub(crate) policy: orchestrate_core::policy::HedgePolicy,
}

/// Fan-out concurrency when `concurrency` is not given.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 8;

pub(crate) struct ForEach {
    pub(crate) key: Ident,
    pub(crate) pat: Pat,
    pub(crate) collection: Expr,
    pub(crate) bindings: Vec<Ident>,
}

/// `canary(version = "v2", weight = 5, key = "sub")` of an endpoint.
pub(crate) struct CanaryAttr {
    pub(crate) policy: orchestrate_core::policy::Canary<String>,
    /// Where `key`'s value is written (the `canary` key without one).
    pub(crate) key_span: Span,
}

/// `slo(availability = "99.9%", p99 = "300ms")` of an endpoint.
pub(crate) struct SloAttr {
    pub(crate) policy: orchestrate_core::policy::Slo,
    /// Where `p99`'s value is written (the `slo` key without one).
    pub(crate) p99_span: Span,
}

/// `cache(ttl = "60s", stale = "30s", key = expr, tags = [expr, ..])` of a call or an endpoint.
pub(crate) struct CacheAttr {
    /// The `cache` key, for errors about the whole attribute.
    pub(crate) key_token: Ident,
    pub(crate) policy: orchestrate_core::policy::CachePolicy,
    /// `key = expr`: the cache key, narrowing the default (the whole request).
    pub(crate) key: Option<Expr>,
    /// `tags = [..]`: invalidation tags.
    pub(crate) tags: Vec<Expr>,
}

/// An expression-valued key with the key's token.
pub(crate) struct Keyed {
    pub(crate) key: Ident,
    pub(crate) expr: Expr,
}

/// `compensate = post("/charges/{payment.id}/refund", body = .., idempotency_key = ..)`.
pub(crate) struct Compensate {
    /// The `compensate` key.
    pub(crate) key: Ident,
    pub(crate) method: HttpMethod,
    /// The method's token (`post`).
    pub(crate) method_token: Ident,
    pub(crate) template: LitStr,
    pub(crate) parts: Vec<TemplatePart>,
    pub(crate) body: Option<Keyed>,
    pub(crate) headers: Option<Keyed>,
    pub(crate) idempotency_key: Option<Keyed>,
    pub(crate) idempotent: Option<Ident>,
    pub(crate) policy: orchestrate_core::policy::CompensationPolicy,
    /// Every field name the compensation's expressions read.
    pub(crate) uses: Vec<Ident>,
}

impl Compensate {
    /// Whether repeating it is safe (it is retried, and resumed after a crash).
    pub(crate) fn retryable(&self) -> bool {
        self.idempotency_key.is_some() || self.idempotent.is_some() || self.method.is_idempotent()
    }
}

pub(crate) struct Call {
    /// The `call` of `#[call(..)]`, for errors about the whole attribute.
    pub(crate) attr_span: Span,
    pub(crate) service: Option<LitStr>,
    pub(crate) timeout: Option<Timed>,
    pub(crate) required: Option<Ident>,
    pub(crate) target: Option<CallTarget>,
    pub(crate) body: Option<Keyed>,
    pub(crate) query: Option<Keyed>,
    pub(crate) headers: Option<Keyed>,
    pub(crate) when: Option<Keyed>,
    pub(crate) fallback: Option<Keyed>,
    pub(crate) idempotency_key: Option<Keyed>,
    pub(crate) idempotent: Option<Ident>,
    pub(crate) after: Vec<Ident>,
    pub(crate) retry: Option<CallRetry>,
    pub(crate) hedge: Option<CallHedge>,
    pub(crate) cache: Option<CacheAttr>,
    pub(crate) for_each: Option<ForEach>,
    /// `compensate = ..`: what undoes the call when a later required step fails.
    pub(crate) compensate: Option<Compensate>,
    /// The fan-out bound, with the `concurrency` key.
    pub(crate) concurrency: Option<(u32, Span)>,
    /// Every field name the call's expressions read (dependencies to resolve).
    pub(crate) uses: Vec<Ident>,
    /// Keys the attribute wrote, well-formed or not (methods and `with` as `target`), and the keys
    /// its unknown keys most likely meant. A missing-key error for one of them would only repeat
    /// an error already reported at the user's token.
    pub(crate) written: Vec<&'static str>,
    /// The attribute could not be parsed to its end: which keys are missing is unknown.
    pub(crate) truncated: bool,
    /// Parsing the attribute reported an error.
    pub(crate) malformed: bool,
}

impl Call {
    /// Whether `key` is absent without an error already explaining why: only then is "add `key`"
    /// the right advice.
    pub(crate) fn missing(&self, key: &str) -> bool {
        !self.truncated && !self.written.contains(&key)
    }

    /// Whether repeating the call is safe: an idempotent method, a call marked `idempotent` (custom
    /// logic, or a `POST` that only computes, like `POST /calculate`), or an idempotency key.
    pub(crate) fn retryable(&self) -> bool {
        self.idempotency_key.is_some()
            || self.idempotent.is_some()
            || matches!(&self.target, Some(CallTarget::Http { method, .. }) if method.is_idempotent())
    }

    /// Whether the call changes something downstream: a request other than GET not marked
    /// `idempotent` (custom logic is not judged).
    pub(crate) fn side_effect(&self) -> bool {
        self.idempotent.is_none()
            && matches!(&self.target, Some(CallTarget::Http { method, .. }) if *method != HttpMethod::Get)
    }
}

/// A type as the user would write it (`Vec<Product>`, not `Vec < Product >`), for messages and
/// the endpoint's spec.
pub(crate) fn type_text(ty: &Type) -> String {
    ty.to_token_stream().to_string().replace(" < ", "<").replace(" >", ">").replace("< ", "<").replace(" ,", ",")
}

/// The shape of a field's type, as far as the macro can tell from its tokens.
pub(crate) enum Shape<'a> {
    /// `Option<T>`
    Option(&'a Type),
    /// Anything else.
    Plain,
}

pub(crate) fn shape(ty: &Type) -> Shape<'_> {
    match generic_arg(ty, "Option") {
        Some(inner) => Shape::Option(inner),
        None => Shape::Plain,
    }
}

/// `T` when `ty` is `Name<T>` (by its last path segment).
pub(crate) fn generic_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    if args.args.len() != 1 {
        return None;
    }
    match args.args.first()? {
        syn::GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}
