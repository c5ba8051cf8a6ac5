package sykli

// jaroWinkler is the Jaro-Winkler similarity of a and b over Unicode code points,
// computed exactly as the Rust crate strsim 0.11 does (prefix scale 0.1, prefix of
// at most 4, boost only above 0.7), so every SDK suggests the same names.
func jaroWinkler(a, b string) float64 {
	ar, br := []rune(a), []rune(b)
	sim := jaro(ar, br)
	if sim <= 0.7 {
		return sim
	}
	prefix := 0
	for prefix < 4 && prefix < len(ar) && prefix < len(br) && ar[prefix] == br[prefix] {
		prefix++
	}
	// float64() conversions force rounding of each step (no fused multiply-add),
	// matching Rust and JavaScript bit for bit.
	boost := float64(float64(0.1*float64(prefix)) * float64(1.0-sim))
	return sim + boost
}

func jaro(a, b []rune) float64 {
	la, lb := len(a), len(b)
	if la == 0 && lb == 0 {
		return 1.0
	}
	if la == 0 || lb == 0 {
		return 0.0
	}
	rng := max(la, lb) / 2
	if rng > 0 {
		rng--
	}
	aFlags := make([]bool, la)
	bFlags := make([]bool, lb)
	matches := 0
	for i := 0; i < la; i++ {
		lo := 0
		if i > rng {
			lo = i - rng
		}
		hi := min(lb, i+rng+1)
		for j := lo; j < hi; j++ {
			if a[i] == b[j] && !bFlags[j] {
				aFlags[i] = true
				bFlags[j] = true
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0.0
	}
	transpositions := 0
	j := 0
	for i := 0; i < la; i++ {
		if !aFlags[i] {
			continue
		}
		for !bFlags[j] {
			j++
		}
		if a[i] != b[j] {
			transpositions++
		}
		j++
	}
	transpositions /= 2
	m := float64(matches)
	return (m/float64(la) + m/float64(lb) + float64(matches-transpositions)/m) / 3.0
}
