// Error messages in a shopper's words. The API names fields as the JSON spells them
// ("start_time must be before end_time"); the page says "The start time must be before the end time."
export const FIELD_WORDS = {
  start_time: "the start time",
  end_time: "the end time",
  stock: "the stock",
  per_user_limit: "the per-person limit",
  low_stock_threshold: "the low-stock alert",
  stock_shards: "the number of stock shards",
  sale_mode: "the sale mode",
  queue_opens_before_seconds: "how early the line opens",
  admissions_per_second: "the admissions per second",
  purchase_window_seconds: "the time to buy",
  entries_open_time: "when entries open",
  product_id: "the product",
  price_cents: "the price",
  currency: "the currency",
  name: "the name",
  description: "the description",
  profile: "the about text",
  email: "the email",
  password: "the password",
  quantity: "the quantity",
  payment_token: "the card",
  admission_token: "your admission",
  content_type: "the image type",
  line1: "the address",
  line2: "the second address line",
  city: "the city",
  region: "the region",
  postal_code: "the postal code",
  country: "the country",
  shipping_address: "the shipping address",
  query: "the search",
};

const PHRASES = [
  [/must be an ISO-8601 time such as \S+/g, "must be a date and time"],
  [/must be an ISO 4217 code such as USD/g, "must be a currency such as USD"],
  [/must be an id of .*$/g, "isn't valid"],
  [/must not contain control characters or lone surrogates/g, "contains characters we can't accept"],
  [/must be an integer/g, "must be a whole number"],
  [/does not apply to a (\w+) drop/g, (_, mode) => `doesn't apply to a ${mode.replace("_", "-")} drop`],
  [/a draw sells one unit to each winner: /g, "A draw sells one unit to each winner, so "],
];

/** "start_time must be before end_time" -> "The start time must be before the end time." */
export function humanize(message) {
  let text = String(message || "").trim();
  for (const [pattern, words] of PHRASES) text = text.replace(pattern, words);
  // Dotted paths first (shipping_address.country -> the country), then bare names.
  text = text.replace(/\b[a-z_]+\.([a-z_0-9]+)\b/g, (all, last) => FIELD_WORDS[last] || all);
  text = text.replace(/\b[a-z]+(?:_[a-z0-9]+)+\b|\b(?:stock|quantity|currency|name|email|password|city|country|query|description|profile)\b/g, (word) => FIELD_WORDS[word] || word.replaceAll("_", " "));
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
