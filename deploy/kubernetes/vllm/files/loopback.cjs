// Preloaded into the MCP server container (NODE_OPTIONS=--require …) so that a Node.js server
// that calls listen(PORT) without a host binds to 127.0.0.1 only: in the pod, only the
// mcp-warden sidecar may reach it (the NetworkPolicy is the second fence). Servers that pass
// their own host are left alone.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  const portOnly =
    (typeof port === "number" || (typeof port === "string" && /^\d+$/.test(port))) &&
    typeof args[1] !== "string";
  if (portOnly) {
    args.splice(1, 0, "127.0.0.1");
  } else if (port && typeof port === "object" && !Array.isArray(port) && port.host === undefined && port.path === undefined) {
    args[0] = { ...port, host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
