"""The Polymarket adapter: the only package that knows Polymarket's wire formats. It turns the venue's bodies, logs
and replies into the domain's facts (horus/domain/market.py, fills.py) and the engine's intents into signed orders.

- exchanges.py: the exchange address book (CTF, neg-risk, ExchangeV3) and the OrderFilled event signatures
- fills.py: OrderFilled logs -> DecodedFill;  data_api.py: Data API trade rows -> DecodedFill
- markets.py: Gamma / CLOB market bodies -> MarketInfo;  metadata.py: fetching and caching them
- quotes.py: order books -> Quote, balances -> Balance;  market_ws.py: the market channel
- auth.py: L1/L2 headers;  orders.py: EIP-712 orders and their bodies;  clob.py: the CLOB HTTP client
- replies.py: order replies, venue orders and trades -> ReplyFacts / OrderTrace (the executor's evidence)
"""
