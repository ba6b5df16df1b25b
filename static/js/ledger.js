// The account's balances and open orders kept up to date from its own effects, the way the
// engine applies them (quanta/core/effects.py), so the page reads them once per connection
// (an AccountDataRequest) instead of spending a quantum on every refresh.
//
// Every quantum result and notification carries the account's own effects group (proven by
// the payload hash); folding each apex once onto the last read gives what the engine holds.
// An effect this module does not know, or an order it cannot find, makes it ask for a fresh
// read instead of guessing (`fold` returns false).

const PRICE_SCALE = 10_000_000n;
const SELL = 1;

/** What an order locks: the asset for asks, ceil(amount × price) of the quote for bids. */
function liability(side, amount, price) {
  if (Number(side) === SELL) return BigInt(amount);
  const product = BigInt(amount) * BigInt(price);
  return (product + PRICE_SCALE - 1n) / PRICE_SCALE;
}

export class AccountLedger {
  /** Starts from an AccountDataInfo read at `apex` (quanta at or below it are in it). */
  constructor(accountData, apex, quoteAsset) {
    this.quote = quoteAsset;
    this.apex = BigInt(apex || 0);
    this.folded = new Set();
    this.accountId = accountData.account_id;
    this.balances = new Map(
      accountData.balances.map((b) => [b.asset, { asset: b.asset, amount: BigInt(b.amount), liabilities: BigInt(b.liabilities) }]),
    );
    this.orders = new Map(accountData.orders.map((o) => [String(o.order_id), { ...o, amount: BigInt(o.amount) }]));
  }

  /** Returns the state as an AccountDataInfo-shaped object for the renderers. */
  view() {
    const balances = [...this.balances.values()].sort((a, b) => a.asset.localeCompare(b.asset));
    const orders = [...this.orders.values()].sort((a, b) => Number(BigInt(a.order_id) - BigInt(b.order_id)));
    return { account_id: this.accountId, balances, orders };
  }

  /** Applies one quantum's own effects once; false when it cannot follow (read again). */
  fold(apex, group) {
    const key = BigInt(apex);
    if (key <= this.apex || this.folded.has(key)) return true;
    this.folded.add(key);
    for (const effect of group.effects) {
      if (!this.apply(effect)) return false;
    }
    return true;
  }

  balance(asset) {
    if (!this.balances.has(asset)) this.balances.set(asset, { asset, amount: 0n, liabilities: 0n });
    return this.balances.get(asset);
  }

  locked(side, asset) {
    return this.balance(Number(side) === SELL ? asset : this.quote);
  }

  apply(e) {
    switch (e._type) {
      case "NonceUpdateEffect":
      case "AccountCreateEffect":
        return true;
      case "BalanceCreateEffect":
        this.balance(e.asset);
        return true;
      case "BalanceUpdateEffect":
        this.balance(e.asset).amount += Number(e.sign) === 0 ? BigInt(e.amount) : -BigInt(e.amount);
        return true;
      case "OrderPlacedEffect":
        this.orders.set(String(e.order_id), { ...e, amount: BigInt(e.amount) });
        this.locked(e.side, e.asset).liabilities += liability(e.side, e.amount, e.price);
        return true;
      case "OrderRemovedEffect":
        return this.unrest(e.order_id);
      case "TradeEffect":
        return this.trade(e);
      case "WithdrawalCreateEffect":
        this.balance(e.asset).liabilities += BigInt(e.amount) + BigInt(e.fee);
        return true;
      case "WithdrawalRemoveEffect":
        this.balance(e.asset).liabilities -= BigInt(e.amount) + BigInt(e.fee);
        return true;
      default:
        return false;
    }
  }

  unrest(orderId) {
    const order = this.orders.get(String(orderId));
    if (!order) return false;
    this.orders.delete(String(orderId));
    this.locked(order.side, order.asset).liabilities -= liability(order.side, order.amount, order.price);
    return true;
  }

  trade(e) {
    if (!e.is_new_order) {
      // A fill of a resting order of ours: it shrinks (or leaves the book when exhausted).
      const order = this.orders.get(String(e.order_id));
      if (!order) return false;
      if (order.amount === BigInt(e.asset_amount)) {
        this.unrest(e.order_id);
      } else {
        const before = liability(order.side, order.amount, order.price);
        order.amount -= BigInt(e.asset_amount);
        this.locked(order.side, order.asset).liabilities -= before - liability(order.side, order.amount, order.price);
      }
    }
    const buying = Number(e.side) !== SELL;
    this.balance(e.asset).amount += buying ? BigInt(e.asset_amount) : -BigInt(e.asset_amount);
    this.balance(this.quote).amount += buying ? -BigInt(e.quote_amount) : BigInt(e.quote_amount);
    return true;
  }
}
