//! The one way to assemble a running server from its configuration: the engine, and its client
//! port when one is asked for. The server binary, the Python package and the C ABI all start
//! servers through `ServerSetup`, so a setting means the same thing in each.
//!
//! ```
//! use zookeeper_core::server::embedded::ServerSetup;
//! use zookeeper_core::server::zoo_cfg::ZooCfg;
//!
//! let cfg = ZooCfg::parse("tickTime=500\nclientPort=0\n").unwrap();
//! let server = ServerSetup::from_zoo_cfg(cfg).start().unwrap();
//! assert!(server.address().is_some(), "zoo.cfg always asks for a client port");
//! let client = server.server().connect().unwrap();
//! assert_eq!(client.exists("/", None).unwrap().map(|stat| stat.num_children), Some(1));
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::replication::TcpTransport;
use crate::server::member_setup::{self, MemberSetupError};
use crate::server::net::{NetConfig, NetServer};
use crate::server::zoo_cfg::{EnsembleCfg, ZooCfg};
use crate::server::{Server, ServerConfig, StartError};

/// What to start: the engine's settings and, if it should serve TCP, the client port's.
#[derive(Clone, Debug, Default)]
pub struct ServerSetup {
    /// Engine settings (tick, limits, data directory, clock).
    pub server: ServerConfig,
    /// The client port; None serves in-process clients only.
    pub net: Option<NetConfig>,
    /// The ensemble this member belongs to (zoo.cfg's `server.N` lines); None: standalone.
    pub ensemble: Option<EnsembleCfg>,
}

impl ServerSetup {
    /// A zoo.cfg's settings: the engine plus the client port it names. `dataDir` becomes the
    /// engine's data directory (none: in memory) and what the `conf` four-letter word reports.
    pub fn from_zoo_cfg(cfg: ZooCfg) -> ServerSetup {
        let ZooCfg {
            mut server,
            mut net,
            data_dir,
            ensemble,
            warnings: _,
        } = cfg;
        if data_dir.is_some() {
            server.data_dir = data_dir.clone();
            net.data_dir = data_dir;
        }
        if let Some(ensemble) = &ensemble {
            server.membership_text = Some((
                ensemble.membership.config_text(),
                ensemble.membership.version,
            ));
            net.ensemble = Some(ensemble.clone());
        }
        ServerSetup {
            server,
            net: Some(net),
            ensemble,
        }
    }

    /// Keeps the transaction log and snapshots in `data_dir` (None: in memory).
    pub fn with_data_dir(mut self, data_dir: Option<PathBuf>) -> ServerSetup {
        if let Some(net) = &mut self.net {
            net.data_dir = data_dir.clone();
        }
        self.server.data_dir = data_dir;
        self
    }

    /// Recovers the data directory, starts time and binds the client port (if any). An
    /// ensemble member first reads its `myid`, checks its data directory belongs to it and
    /// opens its peer port.
    pub fn start(mut self) -> Result<EmbeddedServer, SetupError> {
        let member = match &self.ensemble {
            Some(ensemble) => Some(
                member_setup::prepare(ensemble, &mut self.server).map_err(SetupError::Member)?,
            ),
            None => {
                if let Some(dir) = &self.server.data_dir {
                    member_setup::check_standalone(dir).map_err(SetupError::Member)?;
                }
                None
            }
        };
        let server = Server::start(self.server).map_err(SetupError::Start)?;
        let transport = member.map(|member| {
            member.transport.attach(server.engine());
            member.transport
        });
        let net = match self.net {
            Some(config) => {
                let address = config.address;
                let net = NetServer::start(Arc::clone(server.engine()), config)
                    .map_err(|error| SetupError::Listen { address, error })?;
                Some(net)
            }
            None => None,
        };
        Ok(EmbeddedServer {
            net,
            server,
            transport,
        })
    }
}

/// Why a server could not be assembled.
#[derive(Debug)]
pub enum SetupError {
    /// The engine did not start (configuration, data directory, thread).
    Start(StartError),
    /// The ensemble member could not be assembled (myid, data directory, peer port).
    Member(MemberSetupError),
    /// The client port could not be bound (in use, not permitted, no such address).
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Start(error) => write!(f, "{error}"),
            SetupError::Member(error) => write!(f, "{error}"),
            SetupError::Listen { address, error } => {
                write!(f, "cannot listen on {address}: {error}")
            }
        }
    }
}

impl std::error::Error for SetupError {}

/// A running server: the engine and, when asked for, its client port. Dropping it stops the
/// client port first (connections close), then the engine.
pub struct EmbeddedServer {
    /// Declared first so it drops first: no connection outlives the engine it serves.
    net: Option<NetServer>,
    server: Server,
    /// Declared last: the engine stops before its peers stop hearing from it.
    transport: Option<Arc<TcpTransport>>,
}

impl EmbeddedServer {
    /// The engine's server: in-process clients (`connect`), ticks, the engine itself.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The peer transport of an ensemble member; None standalone.
    pub fn transport(&self) -> Option<&Arc<TcpTransport>> {
        self.transport.as_ref()
    }

    /// Where the client port listens (the bound port when 0 was asked for); None without one.
    pub fn address(&self) -> Option<SocketAddr> {
        self.net.as_ref().map(NetServer::local_address)
    }
}
