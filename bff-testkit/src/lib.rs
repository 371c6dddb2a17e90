//! bff-testkit: the shop's services built in, for `--demo` and the tests.
//!
//! Each service listens on its own ephemeral loopback port, follows its
//! OpenAPI contract, serves seeded data ([`data`]), and can be told to
//! misbehave ([`control::Fault`]); [`demo`] is the `--demo` hook the BFF
//! crates' `demo` feature plugs into the gateway; [`token`] signs
//! development tokens; [`harness`] starts a BFF against them for a test;
//! [`processes`] starts the real `redis-server` and `haproxy` some tests need.
//! Production builds leave this crate out.

pub mod control;
pub mod data;
pub mod demo;
pub mod harness;
pub mod processes;
mod services;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control::{Control, Fault, RecordedRequest, optional_failures};
pub use services::Store;

use bff_core::config::{BaseUrl, Config};

/// The three demo services, as the test kit addresses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Users,
    Orders,
    Notifications,
}

impl Service {
    pub const ALL: [Service; 3] = [Self::Users, Self::Orders, Self::Notifications];

    /// The upstream name a BFF configures it under.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Orders => "orders",
            Self::Notifications => "notifications",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three running demo services. Dropping this stops them.
#[derive(Debug)]
pub struct DemoUpstreams {
    users: SocketAddr,
    orders: SocketAddr,
    notifications: SocketAddr,
    control: Arc<Control>,
    store: Arc<Store>,
    tasks: Vec<JoinHandle<()>>,
}

impl DemoUpstreams {
    /// Starts the three services on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        let control = Arc::new(Control::default());
        let store = Arc::new(Store::seeded());
        let mut tasks = Vec::with_capacity(3);
        let mut spawn = async |service: Service, router: Router| {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let app = router.layer(from_fn_with_state(
                (control.clone(), service),
                control::apply_faults,
            ));
            tasks.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%service, %error, "demo upstream stopped");
                }
            }));
            Ok::<_, std::io::Error>(addr)
        };
        let users = spawn(Service::Users, services::users_router(store.clone())).await?;
        let orders = spawn(Service::Orders, services::orders_router(store.clone())).await?;
        let notifications = spawn(
            Service::Notifications,
            services::notifications_router(store.clone()),
        )
        .await?;
        Ok(Self {
            users,
            orders,
            notifications,
            control,
            store,
            tasks,
        })
    }

    /// The base URL of one service.
    pub fn url(&self, service: Service) -> String {
        let addr = match service {
            Service::Users => self.users,
            Service::Orders => self.orders,
            Service::Notifications => self.notifications,
        };
        format!("http://{addr}")
    }

    /// Points a BFF's config at these services (`upstreams.users`,
    /// `.orders` and `.notifications`).
    pub fn point_config_at_self(&self, config: &mut Config) {
        for service in Service::ALL {
            config.upstreams.entry(service.as_str()).url = BaseUrl::parse(&self.url(service)).ok();
        }
    }

    /// Stops one service: from now on its port refuses connections.
    pub fn stop(&mut self, service: Service) {
        let index = match service {
            Service::Users => 0,
            Service::Orders => 1,
            Service::Notifications => 2,
        };
        self.tasks[index].abort();
    }

    /// Faults, call counts and recorded requests.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The services' data.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Drop for DemoUpstreams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
