// Clients for a BMC started in a test: pinned to its TLS certificate when it serves HTTPS.
import { BmcApiClient, type BmcService } from '../../src/bmc/index.js';

export function clientFor(service: Pick<BmcService, 'url' | 'tls'>, token: string | undefined): BmcApiClient {
  return new BmcApiClient(service.url, token, service.tls ? { pinSha256: service.tls.fingerprintSha256 } : {});
}
