package demo

import (
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sizes of the generated tables (order_items follows from orders: about 2.2 lines each).
const (
	windowDays   = 730 // orders cover the two years before the anchor day
	nSuppliers   = 60
	nProducts    = 500
	nCustomers   = 5000
	nOrders      = 60000
	nEmployees   = 250
	nColdTouches = 10000 // campaign touches that did not convert
)

// generator makes the demo tables. Each table draws from its own PRNG stream (seed + table
// name), so changing one table's logic leaves the others' bytes alone.
type generator struct {
	seed  uint64
	day   time.Time // midnight UTC of the anchor day; every order is before it
	start time.Time // the first order day
}

func newGenerator(now time.Time, seed uint64) *generator {
	u := now.UTC()
	day := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
	return &generator{seed: seed, day: day, start: day.AddDate(0, 0, -windowDays)}
}

func (g *generator) rng(stream string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

func src(rel string) string { return path.Join(SourceDir, rel) }

// reviewMonths are the months of the review drops: the first order month through the last day
// before the anchor.
func (g *generator) reviewMonths() []time.Time {
	var out []time.Time
	last := g.day.Add(-time.Nanosecond)
	for m := time.Date(g.start.Year(), g.start.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(last); m = m.AddDate(0, 1, 0) {
		out = append(out, m)
	}
	return out
}

func reviewPath(m time.Time) string { return src(m.Format("reviews/reviews_2006_01.csv")) }

// csvPaths lists every CSV Write creates, relative to the instance folder.
func (g *generator) csvPaths() []string {
	paths := []string{
		src("categories.csv"), src("suppliers.csv"), src("products.csv"), src("customers.csv"),
		src("orders.csv"), src("order_items.csv"), src("payments.csv"), src("shipments.csv"),
		src("private/employee_salaries.csv"), src("marketing/campaigns.csv"), src("marketing/campaign_touches.csv"),
	}
	for _, m := range g.reviewMonths() {
		paths = append(paths, reviewPath(m))
	}
	return paths
}

// table writes one CSV (RFC 4180: a field is quoted when it holds a comma, a quote or a line
// break; empty fields are nulls).
type table struct {
	w    io.Writer
	line []byte
	err  error
}

func (g *generator) open(out *fileSet, rel string, header ...string) (*table, error) {
	w, err := out.create(rel)
	if err != nil {
		return nil, err
	}
	t := &table{w: w}
	t.row(header...)
	return t, nil
}

func (t *table) row(fields ...string) {
	b := t.line[:0]
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		if needsQuotes(f) {
			b = append(b, '"')
			b = append(b, strings.ReplaceAll(f, `"`, `""`)...)
			b = append(b, '"')
		} else {
			b = append(b, f...)
		}
	}
	b = append(b, '\n')
	t.line = b
	if _, err := t.w.Write(b); err != nil && t.err == nil {
		t.err = err
	}
}

func (t *table) close() error { return t.err }

// Field formats: decimals with two places, ISO dates, RFC 3339 timestamps with the zone offset.
func itoa(n int) string { return strconv.Itoa(n) }

func money(cents int64) string {
	b := make([]byte, 0, 12)
	if cents < 0 {
		b, cents = append(b, '-'), -cents
	}
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	return string(appendDigits(b, int(cents%100), 2))
}

func needsQuotes(f string) bool {
	if f != "" && f[0] == ' ' {
		return true
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; c == ',' || c == '"' || c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

func boolStr(b bool) string { return strconv.FormatBool(b) }

func appendDigits(b []byte, n, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(m), 2)
	b = append(b, '-')
	return appendDigits(b, d, 2)
}

func date(t time.Time) string { return string(appendDate(make([]byte, 0, 10), t)) }

// ts formats t as local time at a fixed UTC offset, e.g. 2025-03-14T09:21:07+01:00 (what
// time.Format does, without its layout parsing, which dominated the generation time).
func (g *generator) ts(t time.Time, offsetMin int) string {
	l := t.UTC().Add(time.Duration(offsetMin) * time.Minute)
	b := appendDate(make([]byte, 0, 25), l)
	h, mi, sec := l.Clock()
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	sign := byte('+')
	if offsetMin < 0 {
		sign, offsetMin = '-', -offsetMin
	}
	b = append(b, sign)
	b = appendDigits(b, offsetMin/60, 2)
	b = append(b, ':')
	return string(appendDigits(b, offsetMin%60, 2))
}

func (g *generator) localDate(t time.Time, offsetMin int) string {
	return date(t.Add(time.Duration(offsetMin) * time.Minute).UTC())
}

// pick returns an index drawn with the given weights.
func pick(r *rand.Rand, weights ...float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func oneOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func between(r *rand.Rand, from time.Time, span time.Duration) time.Time {
	if span <= 0 {
		return from
	}
	return from.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Second)
}

const oneDay = 24 * time.Hour

var asciiFold = strings.NewReplacer("á", "a", "č", "c", "ď", "d", "é", "e", "ě", "e", "í", "i", "ň", "n",
	"ó", "o", "ř", "r", "š", "s", "ť", "t", "ú", "u", "ů", "u", "ý", "y", "ž", "z", "ü", "u", "ö", "o",
	"ä", "a", "ł", "l", "ñ", "n", "ç", "c", "è", "e", "'", "", " ", "", "Č", "c", "Š", "s", "Ž", "z")

// emailPart makes an ASCII mailbox name from a person's name.
func emailPart(s string) string { return asciiFold.Replace(strings.ToLower(s)) }

// generate writes every CSV into out.
func (g *generator) generate(out *fileSet) error {
	subs, err := g.categories(out)
	if err != nil {
		return err
	}
	if err := g.suppliers(out); err != nil {
		return err
	}
	prods, err := g.products(out, subs)
	if err != nil {
		return err
	}
	custs, err := g.customers(out)
	if err != nil {
		return err
	}
	camps, err := g.campaigns(out)
	if err != nil {
		return err
	}
	if err := g.orders(out, prods, custs, camps); err != nil {
		return err
	}
	return g.employees(out)
}

type subRef struct {
	id  int
	sub subcategory
	top string
}

func slug(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer(" & ", "-", "'", "", " ", "-").Replace(s)
	return s
}

func (g *generator) categories(out *fileSet) ([]subRef, error) {
	t, err := g.open(out, src("categories.csv"), "category_id", "parent_id", "name", "slug")
	if err != nil {
		return nil, err
	}
	for i, c := range categoryTree {
		t.row(itoa(i+1), "", c.name, slug(c.name))
	}
	var subs []subRef
	id := len(categoryTree)
	for i, c := range categoryTree {
		for _, s := range c.subs {
			id++
			subs = append(subs, subRef{id: id, sub: s, top: c.name})
			t.row(itoa(id), itoa(i+1), s.name, slug(c.name)+"/"+slug(s.name))
		}
	}
	return subs, t.close()
}

func (g *generator) suppliers(out *fileSet) error {
	r := g.rng("suppliers")
	t, err := g.open(out, src("suppliers.csv"),
		"supplier_id", "name", "country", "contact_email", "phone", "rating", "is_preferred", "onboarded_on")
	if err != nil {
		return err
	}
	names := r.Perm(len(supplierPrefixes) * len(supplierSuffixes))
	for i := 0; i < nSuppliers; i++ {
		n := names[i]
		name := supplierPrefixes[n/len(supplierSuffixes)] + " " + supplierSuffixes[n%len(supplierSuffixes)]
		email := strings.Trim(slug(strings.ReplaceAll(name, ".", "")), "-") + "@example.net"
		phone := ""
		if r.Float64() < 0.7 {
			phone = fmt.Sprintf("+1-555-01%02d", r.IntN(100))
		}
		rating := 25 + r.IntN(26) // 2.5 .. 5.0
		onboarded := between(r, g.start.AddDate(-6, 0, 0), 6*365*oneDay)
		t.row(itoa(i+1), name, oneOf(r, supplierCountries), email, phone,
			fmt.Sprintf("%d.%d", rating/10, rating%10), boolStr(r.Float64() < 0.25), date(onboarded))
	}
	return t.close()
}

type product struct {
	price                  int64 // cents
	launched, discontinued time.Time
}

// products also returns the popularity CDF used to pick products for orders.
type catalog struct {
	items []product
	cdf   []float64
}

func (g *generator) products(out *fileSet, subs []subRef) (*catalog, error) {
	r := g.rng("products")
	t, err := g.open(out, src("products.csv"),
		"product_id", "sku", "name", "category_id", "supplier_id", "unit_price", "unit_cost",
		"weight_kg", "is_active", "launched_on", "discontinued_on")
	if err != nil {
		return nil, err
	}
	cat := &catalog{items: make([]product, nProducts), cdf: make([]float64, nProducts)}
	rank := r.Perm(nProducts)
	total := 0.0
	for i := 0; i < nProducts; i++ {
		s := subs[r.IntN(len(subs))]
		var name string
		if s.top == "Books" {
			name = "The " + oneOf(r, bookAdjectives) + " " + oneOf(r, s.sub.nouns)
			if s.sub.name == "Business" {
				name = oneOf(r, s.sub.nouns) + " for " + oneOf(r, []string{"Busy People", "Everyone", "Founders", "Teams"})
			}
		} else {
			name = oneOf(r, productAdjectives) + " " + oneOf(r, s.sub.nouns)
			if r.Float64() < 0.3 {
				name += fmt.Sprintf(" %c%d", 'A'+rune(r.IntN(6)), 2+r.IntN(8))
			}
		}
		u := r.Float64()
		dollars := s.sub.minUSD + (s.sub.maxUSD-s.sub.minUSD)*u*u
		price := int64(dollars)*100 + 99
		cost := price * int64(50+r.IntN(25)) / 100
		weight := ""
		if r.Float64() > 0.05 {
			weight = strconv.FormatFloat(0.05+r.Float64()*4, 'f', 3, 64)
		}
		p := product{price: price}
		if r.Float64() < 0.1 { // launched during the window
			p.launched = between(r, g.start, (windowDays-30)*oneDay).Truncate(oneDay)
		} else {
			p.launched = between(r, g.start.AddDate(-3, 0, 0), 3*365*oneDay).Truncate(oneDay)
		}
		active := true
		disc := ""
		if r.Float64() < 0.08 {
			active = false
			p.discontinued = between(r, g.day.AddDate(0, 0, -180), 179*oneDay).Truncate(oneDay)
			disc = date(p.discontinued)
		}
		cat.items[i] = p
		total += 1 / math.Pow(float64(rank[i]+1), 0.8)
		cat.cdf[i] = total
		t.row(itoa(i+1), fmt.Sprintf("%s-%05d", strings.ToUpper(slug(s.top)[:2]), i+1), name, itoa(s.id),
			itoa(1+r.IntN(nSuppliers)), money(price), money(cost), weight, boolStr(active), date(p.launched), disc)
	}
	for i := range cat.cdf {
		cat.cdf[i] /= total
	}
	return cat, t.close()
}

// pick draws a product on sale at time at, by popularity; it returns the 0-based index.
func (c *catalog) pick(r *rand.Rand, at time.Time) int {
	for try := 0; ; try++ {
		i := sort.SearchFloat64s(c.cdf, r.Float64())
		if i >= len(c.items) {
			i = len(c.items) - 1
		}
		p := c.items[i]
		if (!p.launched.After(at) && (p.discontinued.IsZero() || at.Before(p.discontinued))) || try > 20 {
			return i
		}
	}
}

type customer struct {
	signup time.Time
	city   city
}

func (g *generator) customers(out *fileSet) ([]customer, error) {
	r := g.rng("customers")
	t, err := g.open(out, src("customers.csv"),
		"customer_id", "first_name", "last_name", "email", "phone", "city", "country",
		"signed_up_at", "marketing_opt_in", "loyalty_tier", "birth_year")
	if err != nil {
		return nil, err
	}
	weights := make([]float64, len(cities))
	for i, c := range cities {
		weights[i] = c.weight
	}
	custs := make([]customer, nCustomers)
	for i := range custs {
		var at time.Time
		if r.Float64() < 0.35 { // customers from before the order window
			at = between(r, g.start.AddDate(-3, 0, 0), 3*365*oneDay)
		} else { // growing sign-ups: density rises over the window
			at = g.start.Add(time.Duration(math.Sqrt(r.Float64()) * float64(windowDays*oneDay))).Truncate(time.Second)
		}
		custs[i] = customer{signup: at, city: cities[pick(r, weights...)]}
	}
	sort.Slice(custs, func(i, j int) bool { return custs[i].signup.Before(custs[j].signup) })
	used := map[string]bool{}
	tiers := []string{"", "bronze", "silver", "gold", "platinum"}
	for i, c := range custs {
		first, last := oneOf(r, firstNames), oneOf(r, lastNames)
		local := emailPart(first) + "." + emailPart(last)
		domain := oneOf(r, emailDomains)
		if used[local+domain] {
			local += itoa(i + 1)
		}
		used[local+domain] = true
		phone := ""
		if r.Float64() < 0.6 {
			phone = fmt.Sprintf("+1-555-%04d", r.IntN(10000))
		}
		birth := ""
		if r.Float64() < 0.75 {
			birth = itoa(1950 + r.IntN(56))
		}
		t.row(itoa(i+1), first, last, local+"@"+domain, phone, c.city.name, c.city.country,
			g.ts(c.signup, c.city.offset), boolStr(r.Float64() < 0.48), tiers[pick(r, 55, 25, 12, 6, 2)], birth)
	}
	return custs, t.close()
}

type campaign struct {
	start, end time.Time
	country    string
}

func (g *generator) campaigns(out *fileSet) ([]campaign, error) {
	r := g.rng("campaigns")
	t, err := g.open(out, src("marketing/campaigns.csv"),
		"campaign_id", "name", "channel", "start_date", "end_date", "budget", "target_country")
	if err != nil {
		return nil, err
	}
	var camps []campaign
	first := time.Date(g.start.Year(), g.start.Month(), 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(g.day.Year(), g.day.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0) // one month ahead
	for m := first; !m.After(last); m = m.AddDate(0, 1, 0) {
		for k := 0; k < 2; k++ {
			startDay, length := 1+r.IntN(5), 7+r.IntN(15)
			if k == 1 {
				startDay, length = 12+r.IntN(9), 5+r.IntN(10)
			}
			c := campaign{start: m.AddDate(0, 0, startDay-1)}
			c.end = c.start.AddDate(0, 0, length-1)
			if r.Float64() < 0.4 {
				c.country = oneOf(r, cities).country
			}
			channel := oneOf(r, campaignChannels)
			budget := int64(20+r.IntN(380)) * 10000
			if m.Month() >= time.November {
				budget *= 2
			}
			camps = append(camps, c)
			t.row(itoa(len(camps)), fmt.Sprintf("%s %d (%s)", campaignThemes[m.Month()-1], m.Year(), channel), channel,
				date(c.start), date(c.end), money(budget), c.country)
		}
	}
	return camps, t.close()
}

// orderTimes draws the order instants over the window: growth, seasonality, weekends and an
// evening peak, sorted.
func (g *generator) orderTimes(r *rand.Rand) []time.Time {
	season := [12]float64{0.8, 0.8, 0.9, 0.9, 1, 1, 0.95, 0.95, 1, 1.05, 1.4, 1.5}
	cdf := make([]float64, windowDays)
	total := 0.0
	for i := range cdf {
		d := g.start.AddDate(0, 0, i)
		w := (0.55 + 0.9*float64(i)/windowDays) * season[d.Month()-1]
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			w *= 1.15
		}
		if d.Month() == time.November && d.Day() >= 24 {
			w *= 1.8
		}
		total += w
		cdf[i] = total
	}
	hours := []float64{1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 4, 4, 4.5, 4.5, 4, 4, 4.5, 5, 6, 7, 7, 6, 4, 2}
	times := make([]time.Time, nOrders)
	for i := range times {
		d := sort.SearchFloat64s(cdf, r.Float64()*total)
		if d >= windowDays {
			d = windowDays - 1
		}
		times[i] = g.start.AddDate(0, 0, d).Add(time.Duration(pick(r, hours...))*time.Hour +
			time.Duration(r.IntN(3600))*time.Second)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times
}

type review struct {
	at                       time.Time
	offset                   int
	product, customer, order int
}

// orders writes orders with their items, payments, shipments and converted campaign touches,
// then the reviews (monthly drops) and the touches that did not convert.
func (g *generator) orders(out *fileSet, cat *catalog, custs []customer, camps []campaign) error {
	r := g.rng("orders")
	orders, err := g.open(out, src("orders.csv"), "order_id", "customer_id", "order_date", "ordered_at", "status",
		"channel", "items_count", "subtotal", "discount", "shipping_fee", "total", "coupon_code", "is_gift")
	if err != nil {
		return err
	}
	items, err := g.open(out, src("order_items.csv"),
		"order_id", "line_no", "product_id", "quantity", "unit_price", "discount_pct", "line_total")
	if err != nil {
		return err
	}
	pays, err := g.open(out, src("payments.csv"), "payment_id", "order_id", "method", "card_brand", "status",
		"amount", "processed_at", "failure_reason")
	if err != nil {
		return err
	}
	ships, err := g.open(out, src("shipments.csv"), "shipment_id", "order_id", "carrier", "service_level",
		"tracking_number", "status", "shipped_at", "estimated_delivery", "delivered_at", "destination_country")
	if err != nil {
		return err
	}
	touches, err := g.open(out, src("marketing/campaign_touches.csv"),
		"touch_id", "campaign_id", "customer_id", "order_id", "touched_at", "converted")
	if err != nil {
		return err
	}

	var reviews []review
	paymentID, shipmentID, touchID := 0, 0, 0
	for i, at := range g.orderTimes(r) {
		orderID := 100001 + i
		eligible := sort.Search(len(custs), func(k int) bool { return !custs[k].signup.Before(at) })
		ci := int(float64(max(eligible, 1)) * math.Pow(r.Float64(), 1.3)) // earlier customers order more
		c := custs[ci]
		off := c.city.offset

		nLines := 1 + pick(r, 35, 30, 20, 10, 5)
		var lineProducts [5]int
		var subtotal int64
		for line := 0; line < nLines; line++ {
			p := cat.pick(r, at)
			for try := 0; try < 8 && contains(lineProducts[:line], p); try++ {
				p = cat.pick(r, at)
			}
			lineProducts[line] = p
			qty := int64(1 + pick(r, 75, 17, 6, 1, 0.6, 0.4))
			discPct := int64([]int{0, 5, 10, 15, 20}[pick(r, 80, 6, 8, 4, 2)])
			price := cat.items[p].price
			lineTotal := (qty*price*(100-discPct) + 50) / 100
			subtotal += lineTotal
			items.row(itoa(orderID), itoa(line+1), itoa(p+1), strconv.FormatInt(qty, 10), money(price),
				strconv.FormatInt(discPct, 10), money(lineTotal))
		}

		coupon, discount, freeShip := "", int64(0), false
		if r.Float64() < 0.12 {
			cc := couponCodes[r.IntN(len(couponCodes))]
			if cc.code == "BLACKFRIDAY" && at.Month() != time.November {
				cc = couponCodes[0]
			}
			coupon = cc.code
			if cc.pct == 0 {
				freeShip = true
			} else {
				discount = subtotal * cc.pct / 100
			}
		}
		level := pick(r, 80, 15, 5)
		transit := []int{3 + r.IntN(4), 1 + r.IntN(2), 1}[level]
		var shipping int64
		if subtotal-discount < 5000 && !freeShip {
			shipping = 499
		}
		shipping += []int64{0, 999, 1999}[level]
		total := subtotal - discount + shipping

		shippedAt := between(r, at.Add(4*time.Hour), 36*time.Hour)
		deliveredAt := between(r, shippedAt.Add(time.Duration(transit)*oneDay), 10*time.Hour)
		var status string
		switch {
		case r.Float64() < 0.04:
			status = "cancelled"
		case g.day.Sub(at) < 3*time.Hour:
			status = "pending"
		case !shippedAt.Before(g.day):
			status = "processing"
		case !deliveredAt.Before(g.day):
			status = "shipped"
		case r.Float64() < 0.05 && deliveredAt.Add(14*oneDay).Before(g.day):
			status = "returned"
		default:
			status = "delivered"
		}
		orders.row(itoa(orderID), itoa(ci+1), g.localDate(at, off), g.ts(at, off), status,
			[]string{"web", "mobile_app", "marketplace"}[pick(r, 55, 35, 10)], itoa(nLines),
			money(subtotal), money(discount), money(shipping), money(total), coupon, boolStr(r.Float64() < 0.06))

		// Payments: sometimes a declined card first, then the payment that counts.
		method := []string{"card", "paypal", "apple_pay", "bank_transfer", "gift_card"}[pick(r, 62, 22, 10, 4, 2)]
		brand := ""
		if method == "card" {
			brand = []string{"visa", "mastercard", "amex"}[pick(r, 55, 35, 10)]
		}
		if status != "pending" && r.Float64() < 0.03 {
			paymentID++
			pays.row(itoa(paymentID), itoa(orderID), "card", oneOf(r, []string{"visa", "mastercard"}), "failed",
				money(total), g.ts(at.Add(time.Duration(5+r.IntN(60))*time.Second), off),
				oneOf(r, []string{"card_declined", "insufficient_funds", "expired_card"}))
		}
		payStatus := map[string]string{"pending": "pending", "cancelled": "voided", "returned": "refunded"}[status]
		if payStatus == "" {
			payStatus = "captured"
		}
		processed := at.Add(time.Duration(30+r.IntN(120)) * time.Second)
		if method == "bank_transfer" {
			processed = processed.Add(time.Duration(1+r.IntN(3)) * oneDay)
		}
		processedAt := g.ts(processed, off)
		if payStatus == "pending" || !processed.Before(g.day) {
			payStatus, processedAt = "pending", ""
		}
		paymentID++
		pays.row(itoa(paymentID), itoa(orderID), method, brand, payStatus, money(total), processedAt, "")

		if status != "cancelled" && status != "pending" {
			carriers := carriersByCountry[c.city.country]
			if carriers == nil {
				carriers = euCarriers
			}
			carrier := oneOf(r, carriers)
			shipStatus := map[string]string{"processing": "label_created", "shipped": "in_transit",
				"delivered": "delivered", "returned": "returned"}[status]
			shipped, delivered := "", ""
			eta := shippedAt.Add(time.Duration(transit) * oneDay)
			if status == "processing" {
				eta = at.Add(time.Duration(transit+1) * oneDay)
			} else {
				shipped = g.ts(shippedAt, 0)
			}
			if status == "delivered" || status == "returned" {
				delivered = g.ts(deliveredAt, off)
			}
			shipmentID++
			ships.row(itoa(shipmentID), itoa(orderID), carrier, []string{"standard", "express", "next_day"}[level],
				fmt.Sprintf("%s%010d", strings.ToUpper(carrier[:2]), r.Int64N(1e10)), shipStatus, shipped,
				g.localDate(eta, off), delivered, c.city.country)
		}

		// A campaign running that day, aimed at the customer's country, gets the credit sometimes.
		if r.Float64() < 0.15 {
			for k, cp := range camps {
				if !at.Before(cp.start) && at.Before(cp.end.Add(oneDay)) && (cp.country == "" || cp.country == c.city.country) {
					touchID++
					touches.row(itoa(touchID), itoa(k+1), itoa(ci+1), itoa(orderID),
						g.ts(at.Add(-time.Duration(1+r.IntN(72*60))*time.Minute), off), "true")
					break
				}
			}
		}

		if status == "delivered" {
			for _, p := range lineProducts[:nLines] {
				if r.Float64() < 0.12 {
					rv := review{at: between(r, deliveredAt.Add(oneDay), 30*oneDay), offset: off, product: p + 1, customer: ci + 1, order: orderID}
					if rv.at.Before(g.day) {
						reviews = append(reviews, rv)
					}
				}
			}
		}
	}
	if err := g.coldTouches(touches, custs, camps, touchID); err != nil {
		return err
	}
	for _, t := range []*table{orders, items, pays, ships, touches} {
		if err := t.close(); err != nil {
			return err
		}
	}
	return g.writeReviews(out, reviews)
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// coldTouches adds campaign touches that did not lead to an order.
func (g *generator) coldTouches(t *table, custs []customer, camps []campaign, touchID int) error {
	r := g.rng("touches")
	for k := 0; k < nColdTouches; k++ {
		ci := r.IntN(len(camps))
		cp := camps[ci]
		end := cp.end.Add(oneDay)
		if end.After(g.day) {
			end = g.day
		}
		if !cp.start.Before(end) {
			continue // a campaign that has not started yet
		}
		at := between(r, cp.start, end.Sub(cp.start))
		for try := 0; try < 10; try++ {
			cu := r.IntN(len(custs))
			c := custs[cu]
			if c.signup.Before(at) && (cp.country == "" || cp.country == c.city.country) {
				touchID++
				t.row(itoa(touchID), itoa(ci+1), itoa(cu+1), "", g.ts(at, c.city.offset), "false")
				break
			}
		}
	}
	return nil
}

// writeReviews writes the reviews as one file per month of creation, like a daily export job
// that drops files into a folder; review ids follow creation time.
func (g *generator) writeReviews(out *fileSet, reviews []review) error {
	r := g.rng("reviews")
	sort.SliceStable(reviews, func(i, j int) bool { return reviews[i].at.Before(reviews[j].at) })
	id := 0
	for _, m := range g.reviewMonths() {
		t, err := g.open(out, reviewPath(m), "review_id", "product_id", "customer_id", "order_id", "rating",
			"title", "body", "created_at", "is_verified_purchase", "helpful_votes")
		if err != nil {
			return err
		}
		next := m.AddDate(0, 1, 0)
		for id < len(reviews) && reviews[id].at.Before(next) {
			rv := reviews[id]
			id++
			rating := 1 + pick(r, 10, 8, 12, 25, 45)
			body := ""
			if r.Float64() < 0.8 {
				body = oneOf(r, reviewBodies[rating])
			}
			t.row(itoa(id), itoa(rv.product), itoa(rv.customer), itoa(rv.order), itoa(rating),
				oneOf(r, reviewTitles[rating]), body, g.ts(rv.at, rv.offset), boolStr(r.Float64() < 0.95),
				itoa(int(math.Floor(math.Pow(r.Float64(), 3)*40))))
		}
		if err := t.close(); err != nil {
			return err
		}
	}
	return nil
}

// employees writes the private salary table: a CEO, a head per department and their teams.
func (g *generator) employees(out *fileSet) error {
	r := g.rng("employees")
	t, err := g.open(out, src("private/employee_salaries.csv"), "employee_id", "full_name", "work_email",
		"department", "job_title", "country", "hire_date", "annual_salary", "currency", "bonus_pct",
		"manager_id", "is_remote", "updated_at")
	if err != nil {
		return err
	}
	weights := make([]float64, len(employeeCountries))
	for i, c := range employeeCountries {
		weights[i] = c.weight
	}
	offsets := map[string]int{"US": -300, "GB": 0}
	used := map[string]bool{}
	for id := 1; id <= nEmployees; id++ {
		dept, title, base, manager := "Leadership", "Chief Executive Officer", 240000.0, ""
		hireFrom := g.start.AddDate(-6, 0, 0)
		switch {
		case id == 1:
		case id <= 1+len(departments):
			dept, title, base, manager = departments[id-2], "Head of "+departments[id-2], 160000, "1"
		default:
			role := oneOf(r, jobRoles)
			dept, title, base = role.department, role.title, role.baseUSD
			for k, d := range departments {
				if d == dept {
					manager = itoa(k + 2)
				}
			}
			hireFrom = g.start.AddDate(-4, 0, 0)
		}
		cc := employeeCountries[pick(r, weights...)]
		if id == 1 {
			cc = employeeCountries[0]
		}
		first, last := oneOf(r, firstNames), oneOf(r, lastNames)
		email := emailPart(first) + "." + emailPart(last)
		if used[email] {
			email += itoa(id)
		}
		used[email] = true
		salary := int64(base*cc.factor*(0.85+0.35*r.Float64())/100) * 100 * 100 // whole hundreds, in cents
		bonus := "0.0"
		if r.Float64() < 0.7 {
			b := 20 + r.IntN(131)
			bonus = fmt.Sprintf("%d.%d", b/10, b%10)
		}
		off, ok := offsets[cc.country]
		if !ok {
			off = 60
		}
		hired := between(r, hireFrom, g.day.Sub(hireFrom)-14*oneDay).Truncate(oneDay)
		updated := between(r, g.day.AddDate(0, 0, -120), 119*oneDay)
		t.row(itoa(id), first+" "+last, email+"@example.com", dept, title, cc.country, date(hired), money(salary),
			cc.currency, bonus, manager, boolStr(r.Float64() < 0.3), g.ts(updated, off))
	}
	return t.close()
}
