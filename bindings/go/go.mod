module exonalab.com/exona

go 1.19
