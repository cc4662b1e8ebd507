use crate::api::users::{CreateUser, SetUserRole, list_users};
use crate::domain::account::{Role, User};
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;

/// Admins create accounts and change roles here.
#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    // Refetch whenever either action finishes.
    let users = Resource::new(
        move || (create.version().get(), set_role.version().get()),
        |_| list_users(),
    );
    let create_error = Signal::derive(move || create.value().get().and_then(Result::err));
    let role_error = Signal::derive(move || set_role.value().get().and_then(Result::err));
    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(list) => view! { <UserTable users=list set_role /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <ErrorNote error=role_error />
        <h2>"New user"</h2>
        <ActionForm action=create attr:class="inline-form">
            <label>"Username" <input type="text" name="username" required /></label>
            <label>"Password" <input type="password" name="password" minlength="12" required /></label>
            <label>"Role" <RoleSelect name="role" selected=Role::Member /></label>
            <button type="submit">"Create"</button>
        </ActionForm>
        <ErrorNote error=create_error />
    }
}

#[component]
fn UserTable(users: Vec<User>, set_role: ServerAction<SetUserRole>) -> impl IntoView {
    view! {
        <table>
            <thead>
                <tr>
                    <th>"Username"</th>
                    <th>"Role"</th>
                    <th>"Since"</th>
                </tr>
            </thead>
            <tbody>
                {users
                    .into_iter()
                    .map(|u| {
                        let since = u.created_at.date().to_string();
                        view! {
                            <tr>
                                <td>{u.username.clone()}</td>
                                <td>
                                    <ActionForm action=set_role attr:class="row-form">
                                        <input type="hidden" name="user_id" value=u.id.to_string() />
                                        <RoleSelect name="role" selected=u.role />
                                        <button type="submit">"Change role"</button>
                                    </ActionForm>
                                </td>
                                <td>{since}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// A `<select>` of the three roles.
#[component]
fn RoleSelect(
    /// The form field name.
    name: &'static str,
    /// The initially selected role.
    selected: Role,
) -> impl IntoView {
    view! {
        <select name=name aria-label="Role">
            {Role::ALL
                .into_iter()
                .map(|r| view! { <option value=r.as_str() selected=r == selected>{r.as_str()}</option> })
                .collect_view()}
        </select>
    }
}
