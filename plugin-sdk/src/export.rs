//! The glue between the curated traits and the generated bindings, and [`export!`].

/// Exports a type as the plugin's implementation. Call it once per plugin crate.
///
/// The kind before the colon names the trait the type implements and must match the
/// SDK feature the crate enables:
///
/// | invocation | trait | feature |
/// |---|---|---|
/// | `export!(auth_protocol: T)` | [`AuthProtocol`](crate::AuthProtocol) | `auth-protocol` |
/// | `export!(payload_transform: T)` | [`PayloadTransform`](crate::PayloadTransform) | `payload-transform` |
/// | `export!(authorization_filter: T)` | [`AuthorizationFilter`](crate::AuthorizationFilter) | `authorization-filter` |
///
/// Outside WebAssembly (unit tests, `cargo check`) it only checks that the type
/// implements the trait, so a plugin's logic can be tested natively.
///
/// ```
/// use switchyard_plugin_sdk::{export, AuthorizationFilter, Event, PluginInfo, Principal, Settings};
///
/// struct Everyone;
///
/// impl AuthorizationFilter for Everyone {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("everyone", "0.1.0", "Lets every account receive every event.")
///     }
///     fn allow(_: &Event, _: &Principal, _: &Settings) -> bool {
///         true
///     }
/// }
///
/// export!(authorization_filter: Everyone);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export {
    (auth_protocol: $ty:ty) => {
        $crate::__export_world!($ty, $crate::AuthProtocol, auth_protocol, AuthProtocolGuest);
    };
    (payload_transform: $ty:ty) => {
        $crate::__export_world!(
            $ty,
            $crate::PayloadTransform,
            payload_transform,
            PayloadTransformGuest
        );
    };
    (authorization_filter: $ty:ty) => {
        $crate::__export_world!(
            $ty,
            $crate::AuthorizationFilter,
            authorization_filter,
            AuthorizationFilterGuest
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($ty:ty, $trait:path, $world:ident, $guest:ident) => {
        const _: () = {
            fn __switchyard_implements<T: $trait>() {}
            let _ = __switchyard_implements::<$ty>;
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__export_world_wasm!($ty, $world, $guest);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_world_wasm {
    ($ty:ty, auth_protocol, $guest:ident) => {
        $crate::__require_auth_protocol!();
        type __SwitchyardGuest = $crate::__private::$guest<$ty>;
        $crate::__export_auth_protocol_impl!(__SwitchyardGuest with_types_in $crate::__bindings::auth_protocol);
    };
    ($ty:ty, payload_transform, $guest:ident) => {
        $crate::__require_payload_transform!();
        type __SwitchyardGuest = $crate::__private::$guest<$ty>;
        $crate::__export_payload_transform_impl!(__SwitchyardGuest with_types_in $crate::__bindings::payload_transform);
    };
    ($ty:ty, authorization_filter, $guest:ident) => {
        $crate::__require_authorization_filter!();
        type __SwitchyardGuest = $crate::__private::$guest<$ty>;
        $crate::__export_authorization_filter_impl!(__SwitchyardGuest with_types_in $crate::__bindings::authorization_filter);
    };
}

#[cfg(any(
    feature = "auth-protocol",
    feature = "payload-transform",
    feature = "authorization-filter"
))]
use std::marker::PhantomData;

#[cfg(feature = "auth-protocol")]
/// Implements the generated `auth-protocol` guest trait for any [`AuthProtocol`](crate::AuthProtocol).
pub struct AuthProtocolGuest<T>(PhantomData<T>);

#[cfg(feature = "auth-protocol")]
impl<T: crate::AuthProtocol> crate::__bindings::auth_protocol::Guest for AuthProtocolGuest<T> {
    fn describe() -> crate::__bindings::auth_protocol::PluginInfo {
        T::describe().into()
    }

    fn authenticate(
        request: crate::__bindings::auth_protocol::OutgoingRequest,
        context: crate::__bindings::auth_protocol::DeliveryContext,
        settings: crate::__bindings::auth_protocol::Settings,
    ) -> Result<crate::__bindings::auth_protocol::OutgoingRequest, String> {
        T::authenticate(request.into(), &context.into(), &settings.into())
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
}

#[cfg(feature = "payload-transform")]
/// Implements the generated `payload-transform` guest trait for any [`PayloadTransform`](crate::PayloadTransform).
pub struct PayloadTransformGuest<T>(PhantomData<T>);

#[cfg(feature = "payload-transform")]
impl<T: crate::PayloadTransform> crate::__bindings::payload_transform::Guest
    for PayloadTransformGuest<T>
{
    fn describe() -> crate::__bindings::payload_transform::PluginInfo {
        T::describe().into()
    }

    fn transform(
        event: crate::__bindings::payload_transform::Event,
        settings: crate::__bindings::payload_transform::Settings,
    ) -> Result<crate::__bindings::payload_transform::Body, String> {
        T::transform(event.into(), &settings.into())
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
}

#[cfg(feature = "authorization-filter")]
/// Implements the generated `authorization-filter` guest trait for any [`AuthorizationFilter`](crate::AuthorizationFilter).
pub struct AuthorizationFilterGuest<T>(PhantomData<T>);

#[cfg(feature = "authorization-filter")]
impl<T: crate::AuthorizationFilter> crate::__bindings::authorization_filter::Guest
    for AuthorizationFilterGuest<T>
{
    fn describe() -> crate::__bindings::authorization_filter::PluginInfo {
        T::describe().into()
    }

    fn allow(
        event: crate::__bindings::authorization_filter::Event,
        principal: crate::__bindings::authorization_filter::Principal,
        settings: crate::__bindings::authorization_filter::Settings,
    ) -> bool {
        T::allow(&event.into(), &principal.into(), &settings.into())
    }
}

#[cfg(feature = "auth-protocol")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_auth_protocol {
    () => {};
}
#[cfg(not(feature = "auth-protocol"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_auth_protocol {
    () => {
        compile_error!(
            "export!(auth_protocol: ..) needs the `auth-protocol` feature of switchyard-plugin-sdk"
        );
    };
}
#[cfg(feature = "payload-transform")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_payload_transform {
    () => {};
}
#[cfg(not(feature = "payload-transform"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_payload_transform {
    () => {
        compile_error!("export!(payload_transform: ..) needs the `payload-transform` feature of switchyard-plugin-sdk");
    };
}
#[cfg(feature = "authorization-filter")]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_authorization_filter {
    () => {};
}
#[cfg(not(feature = "authorization-filter"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __require_authorization_filter {
    () => {
        compile_error!(
            "export!(authorization_filter: ..) needs the `authorization-filter` feature of switchyard-plugin-sdk"
        );
    };
}
