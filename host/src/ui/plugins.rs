//! Administration › Interfaces › Plugins: what is installed for this tenant, with
//! descriptions and the settings each one takes.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::Nav;
use super::session::Admin;
use crate::app::App;

/// `GET /t/{tenant}/admin/plugins`.
pub async fn page(State(app): State<App>, admin: Admin) -> Response {
    let plugins = app.plugins.list(Some(admin.tenant()));
    let body = html! {
        table id="plugins" {
            thead { tr { th { "Plugin" } th { "Kind" } th { "Version" } th { "Description" } th { "Settings" } th { "" } } }
            tbody {
                @for p in &plugins {
                    tr data-name=(p.name) {
                        td { strong { (p.name) } }
                        td { (p.kind.as_str()) }
                        td { (p.version) }
                        td { (p.description) }
                        td {
                            @if p.settings.is_empty() { "—" }
                            @for s in &p.settings {
                                div {
                                    code { (s.name) }
                                    @if s.required { " (required)" }
                                    @if s.secret { " (secret)" }
                                    ": " (s.description)
                                }
                            }
                        }
                        td { @if app.plugins.is_builtin(admin.tenant(), &p.name) { "built in" } @else { "uploaded" } }
                    }
                }
            }
        }
    };
    super::page(&admin, Nav::Plugins, "Plugins", body)
}
