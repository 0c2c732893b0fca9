package demo

// Fixed vocabularies the generator draws from. Everything is fictional; e-mail addresses use
// the reserved example.com/.org/.net domains only.

type city struct {
	name, country string
	offset        int     // UTC offset in minutes (fixed, no daylight saving, so output is stable)
	weight        float64 // share of customers
}

var cities = []city{
	{"New York", "US", -300, 9}, {"Chicago", "US", -360, 5}, {"Austin", "US", -360, 3},
	{"Denver", "US", -420, 2}, {"Los Angeles", "US", -480, 6}, {"Seattle", "US", -480, 3},
	{"Boston", "US", -300, 3}, {"Toronto", "CA", -300, 4}, {"Vancouver", "CA", -480, 2},
	{"London", "GB", 0, 7}, {"Manchester", "GB", 0, 2}, {"Dublin", "IE", 0, 2},
	{"Berlin", "DE", 60, 5}, {"Munich", "DE", 60, 3}, {"Hamburg", "DE", 60, 2},
	{"Paris", "FR", 60, 4}, {"Lyon", "FR", 60, 1}, {"Amsterdam", "NL", 60, 3},
	{"Rotterdam", "NL", 60, 1}, {"Madrid", "ES", 60, 2}, {"Barcelona", "ES", 60, 2},
	{"Milan", "IT", 60, 2}, {"Prague", "CZ", 60, 3}, {"Brno", "CZ", 60, 1},
	{"Warsaw", "PL", 60, 2}, {"Stockholm", "SE", 60, 1}, {"Sydney", "AU", 600, 2},
	{"Melbourne", "AU", 600, 1}, {"Tokyo", "JP", 540, 2},
}

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo",
	"Isabella", "Levi", "Amelia", "Leo", "Harper", "Ethan", "Evelyn", "James", "Chloe", "Oliver",
	"Hannah", "Jakub", "Tereza", "Jan", "Eliška", "Lukas", "Lea", "Felix", "Marie", "Paul",
	"Camille", "Hugo", "Louise", "Arthur", "Sofia", "Marco", "Giulia", "Pablo", "Lucía", "Daniel",
	"Aoife", "Sean", "Freya", "Oscar", "Maja", "Piotr", "Zofia", "Yuki", "Haruto", "Aiko",
	"Priya", "Arjun", "Fatima", "Omar", "Grace", "Samuel", "Nora", "Adam", "Zoe", "Max",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson",
	"Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Walker", "Hall", "Young", "King",
	"Novák", "Svoboda", "Dvořák", "Černá", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker",
	"Dubois", "Moreau", "Laurent", "Rossi", "Russo", "Bianchi", "Fernández", "González", "Murphy", "O'Brien",
	"Kelly", "Jansen", "de Vries", "van Dijk", "Kowalski", "Nowak", "Andersson", "Johansson", "Sato", "Suzuki",
	"Tanaka", "Patel", "Sharma", "Khan", "Nguyen", "Kim", "Chen", "Wang", "Cohen", "Evans",
}

var emailDomains = []string{"example.com", "example.org", "example.net"}

type subcategory struct {
	name           string
	nouns          []string
	minUSD, maxUSD float64
}

type category struct {
	name string
	subs []subcategory
}

var categoryTree = []category{
	{"Electronics", []subcategory{
		{"Headphones", []string{"Wireless Headphones", "Earbuds", "Studio Headphones", "Sport Earphones"}, 19, 349},
		{"Laptops & Tablets", []string{"Laptop 14\"", "Laptop 16\"", "Tablet 11\"", "Chromebook", "Laptop Sleeve"}, 29, 1899},
		{"Smart Home", []string{"Smart Plug", "Video Doorbell", "Smart Bulb (4-pack)", "Thermostat", "Security Camera"}, 15, 299},
	}},
	{"Home & Kitchen", []subcategory{
		{"Cookware", []string{"Frying Pan", "Dutch Oven", "Saucepan Set", "Chef's Knife", "Cutting Board"}, 12, 249},
		{"Furniture", []string{"Desk Chair", "Bookshelf", "Side Table", "Standing Desk", "Floor Lamp"}, 39, 899},
		{"Bedding", []string{"Duvet Cover", "Pillow (2-pack)", "Fitted Sheet", "Weighted Blanket"}, 19, 199},
	}},
	{"Sports & Outdoors", []subcategory{
		{"Fitness", []string{"Yoga Mat", "Kettlebell", "Resistance Bands", "Foam Roller", "Dumbbell Set"}, 9, 249},
		{"Camping", []string{"Tent (2-person)", "Sleeping Bag", "Camping Stove", "Headlamp", "Backpack 40L"}, 14, 449},
		{"Cycling", []string{"Bike Helmet", "Bike Light Set", "Cycling Gloves", "Water Bottle", "Mini Pump"}, 8, 179},
	}},
	{"Books", []subcategory{
		{"Fiction", []string{"Harbor", "Orchard", "Winter", "Lighthouse", "Garden", "River"}, 8, 29},
		{"Business", []string{"Strategy", "Metrics", "Negotiation", "Leadership", "Startups"}, 12, 45},
		{"Children's Books", []string{"Dragon", "Fox", "Rainbow", "Moon", "Robot"}, 6, 24},
	}},
	{"Beauty", []subcategory{
		{"Skincare", []string{"Face Cream", "Serum", "Sunscreen SPF 50", "Cleanser", "Eye Cream"}, 7, 89},
		{"Haircare", []string{"Shampoo", "Conditioner", "Hair Dryer", "Hair Oil", "Styling Paste"}, 6, 159},
		{"Fragrance", []string{"Eau de Parfum", "Eau de Toilette", "Body Mist", "Scented Candle"}, 14, 139},
	}},
	{"Toys & Games", []subcategory{
		{"Board Games", []string{"Strategy Game", "Party Game", "Cooperative Game", "Card Game"}, 9, 79},
		{"Building Sets", []string{"Castle Set", "Space Station Set", "City Set", "Robot Kit"}, 14, 199},
		{"Puzzles", []string{"1000-Piece Puzzle", "3D Puzzle", "Brain Teaser Set", "Floor Puzzle"}, 7, 49},
	}},
}

var productAdjectives = []string{
	"Aurora", "Nimbus", "Summit", "Urban", "Classic", "Pro", "Eco", "Compact", "Deluxe", "Everyday",
	"Nordic", "Vivid", "Terra", "Pulse", "Zen", "Atlas", "Luma", "Orbit", "Cedar", "Echo",
}

var bookAdjectives = []string{
	"Silent", "Last", "Hidden", "Golden", "Little", "Lost", "Bright", "Quiet", "Brave", "Endless",
}

var supplierPrefixes = []string{
	"Northwind", "Blue Harbor", "Redwood", "Silverline", "Greenfield", "Brightstar", "Oakridge",
	"Lakeside", "Ironbridge", "Sunrise", "Westgate", "Pinecrest", "Highland", "Riverbend", "Cobalt",
}

var supplierSuffixes = []string{"Trading", "Supply Co.", "Goods", "Manufacturing", "Wholesale", "Imports"}

var supplierCountries = []string{"CN", "CN", "VN", "TW", "DE", "PL", "CZ", "IT", "US", "US", "MX", "PT"}

var carriersByCountry = map[string][]string{
	"US": {"UPS", "FedEx", "USPS"}, "CA": {"UPS", "FedEx", "Canada Post"},
	"GB": {"Royal Mail", "DPD", "DHL"}, "IE": {"An Post", "DPD"},
	"AU": {"Australia Post", "DHL"}, "JP": {"Yamato", "DHL"},
}

var euCarriers = []string{"DHL", "DPD", "GLS", "UPS"}

var couponCodes = []struct {
	code string
	pct  int64 // discount percent; 0 = free shipping
}{{"WELCOME10", 10}, {"SPRING15", 15}, {"LOYAL5", 5}, {"BLACKFRIDAY", 25}, {"FREESHIP", 0}}

var campaignThemes = [12]string{
	"New Year Reset", "Valentine's Picks", "Spring Refresh", "Easter Deals", "Mother's Day",
	"Summer Kickoff", "Mid-Summer Sale", "Back to School", "Autumn Essentials", "Halloween Treats",
	"Black Friday", "Holiday Gifts",
}

var campaignChannels = []string{"email", "social", "search", "affiliate", "display"}

var reviewTitles = [6][]string{
	1: {"Broke after a week", "Do not buy", "Terrible quality", "Arrived damaged"},
	2: {"Disappointed", "Not great", "Could be better"},
	3: {"It's okay", "Decent", "Average, nothing special", "Mixed feelings"},
	4: {"Very good", "Solid purchase", "Happy with it", "Works well"},
	5: {"Love it!", "Exceeded expectations", "Perfect", "Great value", "Highly recommend"},
}

var reviewBodies = [6][]string{
	1: {"Stopped working after a few days and support never answered.", "The item looked nothing like the photos.",
		"Packaging was crushed, and the product inside was scratched."},
	2: {"Quality feels cheap for the price.", "Delivery was late, and the size runs small.",
		"Does the job, barely; I expected more."},
	3: {"Fine for everyday use, but the \"premium\" label is a stretch.", "Average quality; shipping was quick though.",
		"It works, but the instructions were confusing."},
	4: {"Good quality, arrived on time.", "Nice design; one small scratch, otherwise great.",
		"Does exactly what it says. Would buy again."},
	5: {"Fantastic quality, fast delivery, and great packaging.", "The \"quick start\" guide was helpful, setup took five minutes.",
		"Bought a second one as a gift. Everyone loves it!", "Best purchase this year."},
}

type jobRole struct {
	department, title string
	baseUSD           float64
}

var jobRoles = []jobRole{
	{"Engineering", "Software Engineer", 95000}, {"Engineering", "Senior Software Engineer", 130000},
	{"Engineering", "QA Engineer", 78000}, {"Data", "Data Analyst", 75000}, {"Data", "Data Engineer", 110000},
	{"Customer Support", "Support Agent", 42000}, {"Customer Support", "Support Team Lead", 58000},
	{"Warehouse", "Warehouse Associate", 36000}, {"Warehouse", "Shift Supervisor", 50000},
	{"Marketing", "Marketing Specialist", 62000}, {"Marketing", "Content Manager", 70000},
	{"Finance", "Accountant", 65000}, {"Finance", "Financial Controller", 105000},
	{"People", "HR Generalist", 60000}, {"People", "Recruiter", 58000},
	{"Sales", "Account Executive", 70000}, {"Sales", "Partnerships Manager", 95000},
}

var departments = []string{"Engineering", "Data", "Customer Support", "Warehouse", "Marketing", "Finance", "People", "Sales"}

// employeeCountries: country, currency, factor from the USD base to local currency.
var employeeCountries = []struct {
	country, currency string
	factor            float64
	weight            float64
}{{"US", "USD", 1, 4}, {"DE", "EUR", 0.78, 2}, {"NL", "EUR", 0.8, 1}, {"GB", "GBP", 0.68, 2}, {"CZ", "CZK", 8.5, 3}}
