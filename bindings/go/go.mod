module exona

go 1.19
