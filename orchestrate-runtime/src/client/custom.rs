//! The client handed to custom call logic (`#[call(with = ..)]`).

use super::{CallPolicy, Outgoing, ServiceClient, Target};
use crate::context::RequestContext;
use crate::error::CallError;
use crate::timeline::Tally;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use tokio::time::Instant;

/// A client bound to one service and one call: its requests carry the call's timeout, retry
/// policy, forwarded headers and the endpoint's deadline.
///
/// Custom logic receives it as its first argument:
///
/// ```
/// use orchestrate_runtime::{CallClient, CallError};
/// # #[derive(serde::Deserialize)] struct Profile { id: String }
/// # #[derive(serde::Deserialize)] struct Tier { name: String }
/// /// `#[call(service = "loyalty", timeout = "100ms", with = loyalty_tier(&profile))]`
/// async fn loyalty_tier(client: CallClient<'_>, profile: &Profile) -> Result<Tier, CallError> {
///     let mut path = orchestrate_runtime::Target::new();
///     path.literal("/tiers/").segment(&profile.id);
///     client.get(path).send().await
/// }
/// ```
#[derive(Debug)]
pub struct CallClient<'a> {
    service: &'a ServiceClient,
    policy: CallPolicy,
    context: &'a RequestContext,
    deadline: Instant,
    tally: &'a Tally,
}

impl<'a> CallClient<'a> {
    /// A client for `service` under `policy` until `deadline`, counting into `tally`.
    pub fn new(
        service: &'a ServiceClient,
        policy: CallPolicy,
        context: &'a RequestContext,
        deadline: Instant,
        tally: &'a Tally,
    ) -> Self {
        Self { service, policy, context, deadline, tally }
    }

    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.service.name()
    }

    /// Starts a request; `path` is used as written (build it with [`Target`] to encode values).
    pub fn request(&self, method: http::Method, path: impl Into<Target>) -> RequestBuilder<'_> {
        RequestBuilder { client: self, outgoing: Outgoing::new(method, path.into()) }
    }

    /// Starts a `GET`.
    pub fn get(&self, path: impl Into<Target>) -> RequestBuilder<'_> {
        self.request(http::Method::GET, path)
    }

    /// Starts a `POST`.
    pub fn post(&self, path: impl Into<Target>) -> RequestBuilder<'_> {
        self.request(http::Method::POST, path)
    }

    /// Starts a `PUT`.
    pub fn put(&self, path: impl Into<Target>) -> RequestBuilder<'_> {
        self.request(http::Method::PUT, path)
    }

    /// Starts a `PATCH`.
    pub fn patch(&self, path: impl Into<Target>) -> RequestBuilder<'_> {
        self.request(http::Method::PATCH, path)
    }

    /// Starts a `DELETE`.
    pub fn delete(&self, path: impl Into<Target>) -> RequestBuilder<'_> {
        self.request(http::Method::DELETE, path)
    }
}

/// A request of custom logic, sent with [`RequestBuilder::send`].
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    client: &'a CallClient<'a>,
    outgoing: Outgoing,
}

impl RequestBuilder<'_> {
    /// Sets a JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.outgoing = self.outgoing.json(body);
        self
    }

    /// Appends a serialized query.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.outgoing = self.outgoing.query(query);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.outgoing = self.outgoing.header(name, &value);
        self
    }

    /// Sets the `Idempotency-Key` header.
    pub fn idempotency_key(mut self, key: impl Display) -> Self {
        self.outgoing = self.outgoing.idempotency_key(&key);
        self
    }

    /// Sends the request and returns the successful response.
    ///
    /// # Errors
    ///
    /// The call's failure: timeout, transport error, non-2xx status, open breaker, ...
    pub async fn send_raw(self) -> Result<http::Response<Bytes>, CallError> {
        let c = self.client;
        let sent = c.service.send(&c.policy, c.context, c.deadline, self.outgoing).await;
        c.tally.add(sent.attempts, sent.status, sent.breaker);
        sent.result
    }

    /// Sends the request and decodes the JSON answer as `T`.
    ///
    /// # Errors
    ///
    /// As [`send_raw`](Self::send_raw), plus [`CallErrorKind::Decode`](crate::CallErrorKind::Decode)
    /// when the answer is not a `T`.
    pub async fn send<T: DeserializeOwned>(self) -> Result<T, CallError> {
        let response = self.send_raw().await?;
        super::decode_json(&response)
    }
}

/// Custom logic (`#[call(with = f(a, b))]`) called as `f(client, a, b)`.
///
/// One trait implemented for every number of arguments, the arguments passed as a tuple: a
/// function of another shape matches no implementation, which is one error at the function naming
/// the shape expected; a function of the right shape fixes the argument types, to which each
/// argument then coerces (`&String` to `&str`) as in a direct call.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit as custom call logic",
    label = "expected `async fn(CallClient<'_>, ..) -> Result<T, E>`",
    note = "custom logic is called as `f(client, ..)`: its first parameter is the service's `CallClient<'_>`, then one parameter per argument written in `with = f(..)`; it is `async` and returns `Result<T, E>` with `E: Into<CallError>`"
)]
pub trait CustomLogic<'c, Args> {
    /// The future of the call.
    type Future: std::future::Future;
    /// Calls the logic with the client and the arguments.
    fn call(self, client: CallClient<'c>, args: Args) -> Self::Future;
}

/// The custom logic `f` of a call as a function of the client and an argument tuple, its
/// argument types fixed by `f`'s signature (see [`CustomLogic`]). A function of the wrong shape
/// fails here, once: what the generated code does with the result needs no further bound.
#[doc(hidden)]
pub fn custom_logic<'c, F, Args>(f: F) -> impl FnOnce(CallClient<'c>, Args) -> F::Future
where
    F: CustomLogic<'c, Args>,
{
    move |client, args| f.call(client, args)
}

macro_rules! custom_logic {
    ($(($($arg:ident: $ty:ident),*);)*) => {$(
        #[diagnostic::do_not_recommend]
        impl<'c, F, Fut, $($ty),*> CustomLogic<'c, ($($ty,)*)> for F
        where
            F: FnOnce(CallClient<'c>, $($ty),*) -> Fut,
            Fut: std::future::Future,
        {
            type Future = Fut;
            #[allow(unused_parens)]
            fn call(self, client: CallClient<'c>, ($($arg,)*): ($($ty,)*)) -> Fut {
                self(client, $($arg),*)
            }
        }
    )*};
}

custom_logic! {
    ();
    (a1: A1);
    (a1: A1, a2: A2);
    (a1: A1, a2: A2, a3: A3);
    (a1: A1, a2: A2, a3: A3, a4: A4);
    (a1: A1, a2: A2, a3: A3, a4: A4, a5: A5);
    (a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6);
}
