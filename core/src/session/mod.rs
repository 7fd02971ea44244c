//! Session liveness: timeouts, touches and expiry in ticks.
