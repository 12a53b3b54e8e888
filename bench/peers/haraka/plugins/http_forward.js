// http_forward: a Haraka queue plugin that POSTs each accepted message (raw RFC 5322) to one
// URL and answers the SMTP client 250 only after a 2xx, 451 otherwise. It is what a user
// would write to turn Haraka into an SMTP-to-webhook relay: no parsing, no verification, no
// signing. Keep-alive HTTP connections, one agent per worker process.
//
// Config (config/http_forward.ini):  url=http://127.0.0.1:8080/hook

'use strict'

const http = require('node:http')
const { URL } = require('node:url')

// address-rfc2821 exposes the address as a method in some versions, a property in others.
const addr = (a) => (typeof a.address === 'function' ? a.address() : a.address)

exports.register = function () {
    this.cfg = this.config.get('http_forward.ini').main
    this.target = new URL(this.cfg.url)
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
}

exports.hook_queue = function (next, connection) {
    const txn = connection.transaction
    txn.message_stream.get_data((body) => {
        const req = http.request(
            {
                host: this.target.hostname,
                port: this.target.port,
                path: this.target.pathname,
                method: 'POST',
                agent: this.agent,
                headers: {
                    'Content-Type': 'message/rfc822',
                    'Content-Length': body.length,
                    'X-Mail-From': addr(txn.mail_from),
                    'X-Rcpt-To': txn.rcpt_to.map(addr).join(','),
                },
            },
            (res) => {
                res.resume()
                res.on('end', () => {
                    if (res.statusCode >= 200 && res.statusCode < 300) next(OK)
                    else next(DENYSOFT, `webhook answered ${res.statusCode}`)
                })
            },
        )
        req.on('error', (err) => next(DENYSOFT, `webhook failed: ${err.message}`))
        req.end(body)
    })
}
