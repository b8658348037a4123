// Where the client's token comes from: a fixed token, or the application's `getToken`,
// asked at connect time when the token in hand is missing, near its expiry, or was
// refused, and again when the hub says the token is `expiring` (§4).

export type GetToken = () => string | null | undefined | Promise<string | null | undefined>;

/** A token closer to its expiry than this is not used for a new connection. */
const MARGIN_S = 10;

export class TokenSource {
  private token: string | null;
  /** The token's `exp` (Unix s) as the hub reported it; null when not known. */
  private expiresAt: number | null = null;
  private stale = false;

  constructor(
    token: string | undefined,
    private readonly getToken: GetToken | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.token = token ?? null;
  }

  /** Whether a fresh token can be asked for at all. */
  get canRenew(): boolean {
    return this.getToken !== undefined;
  }

  /** The token a connection was welcomed or refreshed with, and its expiry. */
  accepted(token: string, expiresAt: number): void {
    this.token = token;
    this.expiresAt = expiresAt;
    this.stale = false;
  }

  /** The hub refused the token in hand (4001): the next connection needs a new one. */
  refused(): void {
    this.stale = true;
  }

  /**
   * The token for a new connection: the one in hand while it is good, else a new one
   * from getToken. Null when none can be had (getToken returned nothing, or there is
   * no getToken and the token in hand is refused); an exception of getToken is thrown.
   */
  async forConnect(): Promise<string | null> {
    const nearExpiry =
      this.expiresAt !== null && this.expiresAt - MARGIN_S <= this.now() / 1000;
    if (this.token !== null && !this.stale && !nearExpiry) return this.token;
    if (!this.getToken) return this.stale ? null : this.token;
    return this.fresh();
  }

  /** A new token from getToken (for `refresh`), or null when it gives none. */
  async fresh(): Promise<string | null> {
    if (!this.getToken) return null;
    const token = await this.getToken();
    if (typeof token !== "string" || token === "") return null;
    this.token = token;
    this.stale = false;
    return token;
  }
}
