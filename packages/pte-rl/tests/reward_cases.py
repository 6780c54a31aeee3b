"""Hand-written verifier cases: (gold answer, model answer, expected). The model answer is boxed
into a short fake completion by the test unless it already contains a box or prose."""

EQUAL = [
    ("x_1 + x_2", "x1 + x2"),
    # integers, signs, formatting
    ("5", "5"), ("-3", "-3"), ("42", "42.0"), ("42", "42.00"), ("0", "0"), ("0", "-0"), ("7", "+7"),
    ("1000", "1,000"), ("1000000", "1,000,000"), ("1234567", "1,234,567"), ("12", "12."),
    ("70000", "70,000"), ("3", "{3}"), ("3", "3 "), ("18", " 18"),
    # fractions
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("\\frac{1}{2}", "\\tfrac{1}{2}"),
    ("\\frac{1}{2}", "\\frac12"), ("\\frac{1}{2}", "1/2"), ("\\frac{14}{3}", "\\frac{28}{6}"),
    ("\\frac{3}{56}", "3/56"), ("-\\frac{1}{3}", "\\frac{-1}{3}"), ("-\\frac{1}{3}", "-1/3"),
    ("\\frac{1}{4}", "0.25"), ("\\frac{3}{2}", "1.5"), ("\\frac{7}{4}", "\\cfrac{7}{4}"),
    ("\\frac{1}{3}", "\\frac{2}{6}"), ("2", "\\frac{4}{2}"), ("\\frac{1}{8}", "0.125"),
    ("\\frac{1}{2}", "\\frac{1}{2}"), ("\\frac{5}{2}", "2.5"), ("\\frac{9}{4}", "2.25"),
    # roots
    ("3\\sqrt{13}", "\\sqrt{117}"), ("\\sqrt{51}", "\\sqrt{51}"), ("2\\sqrt{2}", "\\sqrt{8}"),
    ("\\sqrt{2}", "\\sqrt2"), ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"), ("\\sqrt[3]{8}", "2"),
    ("4\\sqrt{3}", "4 \\sqrt{3}"), ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("2+\\sqrt{3}", "\\sqrt{3}+2"), ("5\\sqrt{5}", "\\sqrt{125}"),
    # pi and constants
    ("\\pi", "\\pi"), ("2\\pi", "2 \\pi"), ("\\frac{\\pi}{2}", "\\pi/2"), ("4\\pi", "4\\pi"),
    ("\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi"), ("\\infty", "\\infty"),
    # LaTeX wrappers and spacing
    ("12", "$12$"), ("12", "\\(12\\)".replace("\\(", "").replace("\\)", "")), ("9", "\\left(9\\right)"),
    ("6", "\\!6"), ("10", "10\\,"), ("\\frac{1}{2}", "\\left.\\frac{1}{2}\\right.".replace("\\left.", "").replace("\\right.", "")),
    ("2", "\\displaystyle 2"),
    # text and units
    ("\\text{Evelyn}", "Evelyn"), ("\\text{Evelyn}", "\\text{Evelyn}"), ("10", "10 \\text{ cm}"),
    ("10", "10 cm"), ("5", "5 \\text{ units}"), ("18", "\\$18"), ("18", "18 dollars"), ("3", "3 \\mbox{ hours}"),
    ("4", "4\\mathrm{~m}".replace("~", " ")), ("15", "15 minutes"), ("100", "100 meters"), ("7", "7 days"),
    ("\\text{(C)}", "\\text{(C)}"), ("\\text{Monday}", "Monday"), ("2", "2 \\text{ feet}"),
    ("64", "64 square units"), ("20", "20 \\text{cm}^2".replace("\\text{cm}^2", "cm^2")),
    # degrees
    ("90^\\circ", "90"), ("90", "90^\\circ"), ("45", "45^{\\circ}"), ("30", "30°"), ("60", "60 degrees"),
    # percents (rule: 50% == 50; one-sided % also == 0.5)
    ("50\\%", "50"), ("50", "50\\%"), ("0.5", "50\\%"), ("50\\%", "0.5"), ("25\\%", "25\\%"), ("12.5\\%", "12.5"),
    ("10\\%", "10 percent"),
    # equations: single-variable left side dropped
    ("x=5", "5"), ("5", "x=5"), ("y=2x+3", "2x+3"), ("k=1", "1"), ("x = -2", "-2"), ("n=10", "n = 10"),
    # complex numbers
    ("6 - 5i", "6-5i"), ("6+9i", "9i+6"), ("1+i", "i+1"), ("-i", "-i"), ("2i", "2 i"),
    # symbolic expressions
    ("p - q", "-q+p"), ("2n-2", "2(n-1)"), ("2n", "2 n"), ("\\frac{1}{2n+2}", "\\frac{1}{2(n+1)}"),
    ("x^2+2x+1", "(x+1)^2"), ("a^2-b^2", "(a-b)(a+b)"), ("3n", "n*3"), ("\\frac{3m}{2}-1", "1.5m-1"),
    ("2^{1009}", "2^{1009}"), ("n^2", "n \\cdot n"), ("x^3", "x^{3}"), ("4x", "4\\times x"),
    ("\\frac{x}{2}", "0.5x"), ("2x+1", "1+2x"), ("ab", "ba"), ("6x^2", "3x\\cdot 2x"),
    # scientific notation
    ("4.5e33", "4.5\\times10^{33}"), ("3e6", "3000000"), ("8.7e8", "8.7 \\times 10^{8}"), ("1e-3", "0.001"),
    # decimals
    ("0.006", "0.006"), ("20.39", "20.39"), ("1.6", "1.60"), ("0.49", ".49"), ("3.14", "3.140"),
    # tuples, intervals, sets, pm
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("(2,4)", "(2, 4)"), ("(1,2,3)", "(1, 2, 3)"),
    ("[0,1]", "[0, 1]"), ("(0,1]", "(0,1]"), ("(-\\infty, 2)", "(-\\infty,2)"), ("[2,\\infty)", "[2, \\infty)"),
    ("\\{1,2\\}", "\\{2,1\\}"), ("1, 2", "2, 1"), ("1,2,3", "3, 1, 2"), ("-1, 1", "1,-1"),
    ("\\pm 2", "2, -2"), ("1 \\pm \\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}"), ("(1,2) \\cup (3,4)", "(3,4)\\cup(1,2)"),
    ("x \\in [1,2]", "[1,2]"), ("(\\frac{1}{2}, 3)", "(0.5, 3)"),
    # matrices
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
    ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "\\begin{bmatrix} 1 \\\\ -2 \\end{bmatrix}"),
    ("\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} 0.5 & 0 \\\\ 0 & 1 \\end{pmatrix}"),
    # functions
    ("\\sin(x)", "\\sin x"), ("\\ln 2", "\\ln(2)"), ("e^{2}", "e^2"), ("\\log(8)", "3\\log(2)"),
    # factorial / large but bounded integers
    ("120", "5!"), ("3628800", "10!"), ("1024", "2^{10}"), ("2^{100}", "1267650600228229401496703205376"),
    # function notation stays opaque; lower-case letters before "(" multiply
    ("I(0) e^{-t}", "e^{-t} I(0)"), ("f(x)", "f(x)"), ("x(x+1)", "x^2+x"), ("2x(x-1)", "2x^2-2x"),
    # abs
    ("5", "|-5|"), ("|x|", "|x|"),
    # labelled answers: a name, |name|, name tuple or ratio of names on the left is dropped
    ("(3,2)", "(p,q)=(3,2)"), ("(3,2)", "(p, q) = (3, 2)"), ("4, 5", "AB=4, CD=5"), ("4, 5", "AB = 4,\\ CD = 5"),
    ("11:21", "V_1:V_2=11:21"), ("1", "|AB|=1"), ("2, 3", "x_1=2, x_2=3"), ("2, 3", "x_{1} = 3, x_{2} = 2"),
    ("\\frac{3}{4}", "AB = \\frac{3}{4}"), ("24", "m\\angle A = 24^\\circ"), ("7", "f(2) = 7"), ("\\sqrt{5}", "\\overline{PQ} = \\sqrt{5}"),
    ("n, 1", "f(n)=n, g(n)=1"),
    # relations: spellings, flipped sides, negated sides, and the matching interval
    ("x \\geq 5", "x >= 5"), ("x\\ge 5", "x \\geq 5"), ("x \\geq 5", "x≥5"), ("x \\leq 5", "5 \\geq x"), ("x<1", "-x > -1"),
    ("x \\le 3", "x ≤ 3"), ("x \\lt 3", "x<3"), ("x \\gt 0", "0 < x"), ("x \\neq 2", "x != 2"), ("x \\ne 2", "x ≠ 2"),
    ("k \\geqslant 2", "k \\ge 2"), ("a \\geq b", "b \\leq a"), ("x > 2", "2x > 4"), ("x \\leq 5", "x \\leq 5.0"),
    ("[5,\\infty)", "x \\geq 5"), ("(-\\infty, 3]", "x \\le 3"), ("(-\\infty,2)\\cup(2,\\infty)", "x \\neq 2"),
    ("x \\in (-\\infty, 3]", "x \\leq 3"), ("(4, \\infty)", "t > 4"),
    # double inequalities: an interval when the middle is a variable or function term
    ("(0,1)", "0<f(x)<1"), ("[1, 3/2]", "1 \\le |z| \\le 3/2"), ("[0,1)", "0 \\leq x < 1"), ("1 < x < 3", "3 > x > 1"),
    ("0 < x < 1", "(0,1)"), ("(-2, 5]", "-2 < y \\leq 5"),
    # answer lists written with ; and/or
    ("\\{-12,-11,-10\\}", "-12;-11;-10"), ("1,2,3", "$1$ and $2$ and $3$"), ("6, 8", "6 \\text{ and } 8"),
    ("(11,7),(7,11)", "(11,7) or (7,11)"), ("2, 3", "x = 2 \\text{ or } x = 3"), ("\\pm 3", "3 \\text{ or } -3"),
    ("-1, 4", "-1 and 4"), ("\\text{Alice and Bob}", "Alice and Bob"),
    # thousands separators only for a whole single number; pairs and intervals keep their commas
    ("(1, 100)", "(1,100)"), ("[0, 250]", "[0,250]"), ("(12,102)", "(12, 102)"), ("14916", "14{,}916"),
    ("11111100", "11,\\! 111,\\! 100"), ("12000023", "12,000,023"), ("58,500", "58500"), ("(2,251,252)", "(2, 251, 252)"),
    # unsupported notation that now parses
    ("125", "125\\textnormal{ miles}"), ("\\sec^2(y)", "\\tan^2(y)+1"), ("28\\%", "28 pct"), ("28", "28 percentage"),
    ("28\\%", "28 percent"), ("55", "\\sum_{k=1}^{10} k"), ("120", "\\prod_{j=1}^{5} j"), ("\\sin^2 x", "1-\\cos^2 x"),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}"), ("\\frac{\\pi}{6}", "\\sin^{-1}(1/2)"), ("3", "\\log_2 8"), ("3", "\\lfloor \\pi \\rfloor"),
    ("x_1 + x_2", "x_{2}+x_{1}"), ("2\\alpha", "\\alpha+\\alpha"),
    # chains and approximations
    ("11", "x \\approx 11"), ("6", "z = 3+3 = 6"), ("42", "6 \\times 7 = 42"), ("10.95", "2\\sqrt{30} \\approx 10.95"),
    ("2\\sqrt{30}", "2\\sqrt{30} \\approx 10.95"), ("\\frac{1}{12}", "\\frac{1}{12} \\approx 0.0833"), ("5", "x = 2 + 3 = 5"),
    # equations: lhs - rhs equal up to a nonzero constant factor
    ("y=-\\frac12x+\\frac34", "2x+4y-3=0"), ("2x+4y-3=0", "-2x-4y+3=0"), ("y = 2x+3", "y - 2x = 3"),
    ("x^2+y^2=1", "2x^2+2y^2=2"), ("5x - 7y + 11z + 4 = 0", "10x - 14y + 22z + 8 = 0"), ("y = 2x + 3", "2x - y + 3 = 0"),
    # decimals vs fractions: a long decimal matches a rational without a finite expansion
    ("\\frac{1}{12}", "0.0833333333333333"), ("1/12", "0.08333333"), ("\\frac{1}{3}", "0.3333333"),
    ("\\frac{2}{7}", "0.285714285714"), ("0.0833333333", "\\frac{1}{12}"), ("\\sqrt{17}", "4.123105625617661"),
    # matrices written with array
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\left(\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right)"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]"),
    ("\\begin{bmatrix} 1 \\\\ -2 \\end{bmatrix}", "\\begin{array}{c} 1 \\\\ -2 \\end{array}"),
    ("\\begin{pmatrix} \\frac{1}{2} \\\\ 0 \\end{pmatrix}", "\\left(\\begin{array}{c} 0.5 \\\\ 0 \\end{array}\\right)"),
    # wrappers
    ("(-6, 10)", "\\((-6, 10)\\)"), ("(-6, 10)", "\\[(-6,10)\\]"), ("42", "**42**"),
]

NOT_EQUAL = [
    # a letter glued to digits is a subscripted symbol, not a product
    ("p - q", "p - q1"), ("2x", "x2"),
    ("5", "6"), ("5", "-5"), ("-3", "3"), ("42", "24"), ("1000", "100"), ("0", "1"), ("7", "7.1"),
    ("\\frac{1}{2}", "\\frac{1}{3}"), ("\\frac{3}{56}", "\\frac{4}{56}"), ("\\frac{14}{3}", "\\frac{3}{14}"),
    ("-\\frac{1}{3}", "\\frac{1}{3}"), ("0.5", "0.05"), ("\\frac{1}{4}", "0.24"), ("2", "\\frac{5}{2}"),
    ("3\\sqrt{13}", "\\sqrt{39}"), ("\\sqrt{2}", "2"), ("2\\sqrt{2}", "\\sqrt{6}"), ("\\sqrt{3}/2", "\\sqrt{2}/2"),
    ("\\pi", "3.14"), ("2\\pi", "\\pi"), ("\\frac{\\pi}{2}", "\\frac{\\pi}{3}"), ("\\infty", "-\\infty"),
    ("\\text{Evelyn}", "Bob"), ("\\text{(C)}", "\\text{(D)}"), ("10", "10.5 cm"), ("18", "\\$19"),
    ("90^\\circ", "45"), ("30", "60°"),
    ("50\\%", "5"), ("0.5", "5\\%"), ("50\\%", "0.05"), ("25\\%", "0.5"),
    ("x=5", "6"), ("y=2x+3", "2x-3"), ("k=1", "2"),
    ("6 - 5i", "6+5i"), ("1+i", "1-i"), ("2i", "2"),
    ("p - q", "q - p"), ("2n-2", "2n+2"), ("2n", "n"), ("x^2+2x+1", "(x-1)^2"), ("a^2-b^2", "(a-b)^2"),
    ("2^{1009}", "2^{1008}"), ("3n", "3m"), ("\\frac{x}{2}", "2x"), ("ab", "a+b"), ("x", "y"),
    ("4.5e33", "4.6e33"), ("3e6", "300000"), ("1e-3", "0.01"),
    ("0.006", "0.06"), ("20.39", "20.4"), ("1.6", "1.62"),
    ("(2,4)", "(4,2)"), ("(2,4)", "[2,4]"), ("[0,1]", "(0,1)"), ("(0,1]", "[0,1)"), ("(1,2,3)", "(1,2)"),
    ("\\{1,2\\}", "\\{1,3\\}"), ("1, 2", "1"), ("1,2,3", "1,2,4"), ("\\pm 2", "2"), ("(-\\infty, 2)", "(-\\infty, 3)"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}"),
    ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}+1"),
    ("I(0)", "-(I(0))"), ("f(2)", "f(3)"),
    ("\\sin(x)", "\\cos(x)"), ("\\ln 2", "\\ln 3"), ("120", "4!"), ("1024", "2^{11}"), ("5", "|-6|"),
    ("12", "121"), ("3", "33"), ("18", "1.8"), ("64", "6.4"), ("9", "-9"), ("27", "72"), ("-1", "1"),
    # labels must not make different answers equal; an expression lhs is an equation, not a label
    ("(3,2)", "(p,q)=(2,3)"), ("4, 5", "AB=4, CD=6"), ("11:21", "V_1:V_2=21:11"), ("1", "|AB|=2"), ("2", "2x = 4"),
    ("5", "x^2=5"), ("7", "f(2) = 8"), ("(2,3)", "x=2, y=3"), ("2, 3", "x_1=2, x_2=4"), ("\\frac{3}{4}", "AB=\\frac{4}{3}"),
    # relations: strictness, direction, variables and intervals differ
    ("x>5", "x\\geq5"), ("x \\geq 5", "x \\leq 5"), ("x<1", "x>-1"), ("x>2", "x<2"), ("a \\geq b", "a \\leq b"),
    ("x \\geq 5", "y \\geq 5"), ("x \\neq 2", "x = 2"), ("[5,\\infty)", "x>5"), ("(5,\\infty)", "x \\geq 5"), ("5", "x > 5"),
    ("(-\\infty, 3]", "x < 3"), ("x \\leq 5", "5"),
    ("0<x<1", "[0,1]"), ("(0,1)", "0 \\leq x < 1"), ("1 < x < 3", "1 < x \\leq 3"), ("[1, 3/2]", "1 < |z| \\le 3/2"),
    ("(0,1)", "0 < x+1 < 1"),
    # lists
    ("2", "2 or 3"), ("3", "x = 3 \\text{ or } x = -3"), ("1,2,3", "1 and 2"), ("\\{-12,-11,-10\\}", "-12;-11;-9"),
    ("(11,7),(7,11)", "(11,7) or (11,7)"),
    # tuples/intervals keep their commas, brackets and order
    ("(1,2)", "[1,2]"), ("(3,2)", "(2,3)"), ("(1, 100)", "(1100)"), ("(12,102)", "12102"), ("(1,2,3)", "(3,2,1)"),
    ("[0, 250]", "[0, 25]"),
    # notation
    ("\\sec^2(y)", "\\tan^2(y)"), ("\\csc x", "\\sec x"), ("55", "\\sum_{k=1}^{9} k"), ("28\\%", "29 pct"), ("125", "12.5\\textnormal{ miles}"),
    ("x_1", "x_2"), ("3", "\\log_2 9"),
    # chains and approximations judge the last side (or a consistent exact side)
    ("6", "z = 6 = 7"), ("11", "x \\approx 12"), ("2\\sqrt{30}", "5 \\approx 10.95"), ("5", "x = 5 + 1 = 6"),
    # equations that are not multiples of each other
    ("2x+4y-3=0", "2x+4y+3=0"), ("y = 2x+3", "y = 2x"), ("x^2+y^2=1", "x^2+y^2=2"), ("y = 2x", "x = 2y"),
    ("5x - 7y + 11z + 4 = 0", "5x - 7y + 11z - 4 = 0"),
    # decimals vs fractions: short roundings and finite decimals stay exact
    ("1/12", "0.083"), ("1/3", "0.33"), ("\\frac{1}{2}", "0.500001"), ("2", "2.0000001"), ("\\frac{2}{7}", "0.2857"),
    ("0.125", "0.1250001"), ("\\sqrt{2}", "1.414"),
    # matrices
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\left(\\begin{array}{cc} 1 & 3 \\\\ 2 & 4 \\end{array}\\right)"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\left[\\begin{array}{c} 2 \\\\ 1 \\end{array}\\right]"),
]

COMPLETIONS = [
    # (gold, full completion text, expected reward)
    ("42", "First 40, then 2 more. The final answer is \\boxed{42}.", 1.0),
    ("42", "\\boxed{41} is wrong, so the answer is \\boxed{42}", 1.0),
    ("42", "I think \\boxed{42} but actually \\boxed{43}", 0.0),
    ("42", "The answer is 42.", 1.0),
    ("42", "The final answer is: 42", 1.0),
    ("42", "So we get\n#### 42", 1.0),
    ("42", "We computed 40 and then 42", 1.0),
    ("42", "no digits here at all", 0.0),
    ("\\frac{1}{2}", "Thus $\\boxed{\\dfrac{1}{2}}$.", 1.0),
    ("\\frac{1}{2}", "\\fbox{0.5}", 1.0),
    ("5", "\\boxed 5", 1.0),
    # an empty box (copied from an instruction) is not an answer: the next rule decides
    ("76", "\\boxed{}: 49 + 27 = 76.", 1.0),
    ("612", "17 * 36 = 612\n\nThe answer is \\boxed{}.", 1.0),
    ("612", "17 * 36 = 512\n\nThe answer is \\boxed{}.", 0.0),
    ("9", "\\boxed{9} and then \\boxed{ }", 1.0),
    ("7", "Put it in \\fbox{} like \\boxed{  }. So 7.", 1.0),
    # a verdict after "answer is" is not the answer
    ("44", "22 * 2 = 44\n\nYour answer is correct.", 1.0),
    ("44", "22 * 2 = 45\n\nYour answer is correct.", 0.0),
    ("18", "2 * 9 = 18\n\nYour answer is correct, but I'll be more precise.", 1.0),
    ("6", "The answer is as follows: 2 * 3 = 6", 1.0),
    ("(1,2)", "\\boxed{(1, 2)}", 1.0),
    ("3", "\\boxed{\\text{3}}", 1.0),
    ("3", "\\boxed{{3}}", 1.0),
    ("10", "The answer is \\boxed{10\\text{ cm}}", 1.0),
    ("10", "\\boxed{}", 0.0),
    ("10", "\\boxed{10", 1.0),  # unbalanced box is ignored; falls back to the last number
    ("7", "Let me think. 3+4=7. Answer: 7", 1.0),
    ("7", "3+4 = 8? no. Answer: \\boxed{8}", 0.0),
    ("2", "The roots are \\boxed{x = 2}", 1.0),
    # no box: the answer sentence ends at a full stop (not a decimal point)
    ("12000023", "So the total is 12,000,023.\nFinal Answer: The final answer is 12,000,023. I hope it is correct.", 1.0),
    ("12000023", "Final Answer: The final answer is 12,000,024. I hope it is correct.", 0.0),
    ("42", "6 times 7. The answer is 42. Done.", 1.0),
    ("3.5", "Half of 7 gives the answer is 3.5. That's it.", 1.0),
    ("3.5", "The answer is 3.6. That's it.", 0.0),
    ("34", "Checking n = 35 fails.\n\nFinal Answer: The largest $n$ is 34.", 1.0),
    ("34", "Final Answer: The largest $n$ is 35.", 0.0),
    ("(-6,10)", "The midpoint works out.\n\nThe answer is \\((-6, 10)\\).", 1.0),
    ("(-6,10)", "So the answer is: \\[(-6, 10)\\]", 1.0),
    ("5", "The answer is 5, because 2+3=5.", 1.0),
    ("42", "The final answer is **42**.", 1.0),
    ("\\frac{1}{2}", "Therefore, the answer is $\\frac{1}{2}$, which is in lowest terms.", 1.0),
    ("5", "Therefore, the answer is $x = 5$.", 1.0),
    # last-number fallback: fractions, math spans, and never a number glued inside a word
    ("\\frac{2}{3}", "Two of the three outcomes win, so the probability is 2/3.", 1.0),
    ("3", "Two of the three outcomes win, so the probability is 2/3.", 0.0),
    ("(7,6)", "Solving both equations, the intersection point is $(7, 6)$", 1.0),
    ("6", "Solving both equations, the intersection point is $(7, 6)$", 0.0),
    ("42", "We computed $40 + 2 = 42$", 1.0),
    ("2", "The code is AZYUK2A", 0.0),
    ("2", "Use token AZYUK2A to log in.", 0.0),
    ("7", "There are 7 of them; the serial is XK9Z.", 1.0),
    # several final boxes: one unordered answer when the gold is a list or set, else the last box
    ("\\{1,2,3\\}", "The roots are \\boxed{1}, \\boxed{2}, \\boxed{3}", 1.0),
    ("1, 2, 3", "The roots are \\boxed{3}, \\boxed{1}, \\boxed{2}.", 1.0),
    ("(2,2),(6,2)", "So $\\boxed{(2,2)} \\quad\\text{and}\\quad \\boxed{(6,2)}$", 1.0),
    ("-2, 3", "$x = \\boxed{-2}$ or $x = \\boxed{3}$", 1.0),
    ("\\pm 3", "\\boxed{3} \\text{ and } \\boxed{-3}", 1.0),
    ("1, 2, 3", "The roots are \\boxed{1}, \\boxed{2}", 0.0),
    ("1, 2, 3", "The roots are \\boxed{1}, \\boxed{2}, \\boxed{4}", 0.0),
    ("(1,2,3)", "\\boxed{1}, \\boxed{2}, \\boxed{3}", 0.0),
    ("(2,3)", "\\boxed{2}, \\boxed{3}", 0.0),
    ("3", "\\boxed{1}, \\boxed{2}, \\boxed{3}", 1.0),
    ("1, 2", "First \\boxed{1}. Then, after checking, the answer is \\boxed{2}", 0.0),
    ("2", "First \\boxed{1}. Then, after checking, the answer is \\boxed{2}", 1.0),
    ("1, 2", "\\boxed{1} \\quad \\boxed{2} and \\boxed{}", 1.0),
    ("1, 2", "So \\boxed{1, 2}\n\n\\boxed{1, 2}", 1.0),
]

# Issue #24: answer forms the verifier used to miss, one family each: "equal" / "not_equal" hold
# (gold, answer) pairs like the lists above (the twins that must stay unequal are in "not_equal"),
# "completions" hold (gold, completion text, expected reward).
FAMILIES = {
    # 1. thousands separators followed by a unit (m², m^2, \text{ m}^2, cm, dollars)
    "units": {
        "equal": [
            ("1000.99", "1,000.99m²"), ("1000.99", "1,000.99 m^2"), ("1000.99", "1,000.99\\text{ m}^2"),
            ("1000.99", "1,000.99 cm"), ("1000.99", "1,000.99 dollars"), ("1000.99", "1,000.99\\,\\mathrm{m}^{2}"),
            ("2500", "2,500 \\text{ square meters}"), ("12000", "12,000 cm³"), ("1500", "\\$1,500"),
            ("1000.99", "1,000.99 \\text{m}^2."),
        ],
        "not_equal": [
            ("1000.99", "1,000.98m²"), ("1000", "1,000.99 m^2"), ("100099", "1,000.99 cm"), ("(1,500)", "1,500 m"),
            ("1000.99", "1,000.99 m^2 + 1"),
        ],
        "completions": [
            ("1000.99", "The area is 1,000.99m².", 1.0),
            ("1000.99", "So the floor needs 1,000.99 m^2 of tiles", 1.0),
            ("2", "So the floor needs 1,000.99 m^2 of tiles", 0.0), ("1000.99", "The area is 1,000.98m².", 0.0),
        ],
    },
    # 2. several math spans, the last a chain `a = b` (also with a stray closing $): its right side
    "span_chain": {
        "equal": [
            ("\\frac{10}{9}", "\\frac{1}{2} = \\frac{10}{9}"),
        ],
        "not_equal": [],
        "completions": [
            ("\\frac{10}{9}", "Answer $\\frac{1}{2}$ = \\frac{10}{9}$", 1.0),
            ("\\frac{1}{2}", "Answer $\\frac{1}{2}$ = \\frac{10}{9}$", 0.0),
            ("\\frac{10}{9}", "Answer $\\frac{1}{2}$ = \\frac{10}{9}", 1.0),
            ("\\frac{10}{9}", "Answer: $\\frac{1}{2}$ = $\\frac{10}{9}$", 1.0),
            ("\\frac{10}{9}", "So $\\frac{AB}{CD}$ = $\\frac{10}{9}$", 1.0),
            ("\\frac{10}{9}", "Thus $r = 2$ and $\\frac{AB}{CD} = \\frac{10}{9}$", 1.0),
            ("\\frac{9}{10}", "Thus $r = 2$ and $\\frac{AB}{CD} = \\frac{10}{9}$", 0.0),
            ("\\frac{10}{9}", "We get $a = 5$, $b = 4.5$, so $\\frac{a}{b} = \\frac{10}{9}$", 1.0),
            ("\\frac{10}{9}", "The ratio $\\frac{AB}{CD}$ = \\frac{10}{9}$.", 1.0),
            ("9", "Answer $\\frac{1}{2}$ = \\frac{10}{9}$", 0.0),
        ],
    },
    # 3. a relation gold (7 = 11a+c) is not its bare side; a label (x = 5) still is
    "relation_gold": {
        "equal": [
            ("7 = 11a+c", "7 = 11a + c"), ("7 = 11a+c", "11a + c = 7"), ("7 = 11a+c", "11a+c-7=0"),
            ("0 = x^2-4", "x^2 = 4"), ("x = 5", "5"), ("5", "x = 5"), ("x=5", "5 = x"), ("42", "6 \\times 7 = 42"),
        ],
        "not_equal": [
            ("7 = 11a+c", "11a+c"), ("11a+c", "7 = 11a+c"), ("7 = 11a+c", "7"), ("7 = 11a+c", "8 = 11a+c"),
            ("0 = x^2-4", "x^2-4"), ("3 = 2x+y", "2x + y"), ("5", "5 = x + 1"),
        ],
        "completions": [
            ("7 = 11a+c", "Comparing coefficients, \\boxed{11a+c}", 0.0),
            ("7 = 11a+c", "Comparing coefficients, \\boxed{11a + c = 7}", 1.0),
        ],
    },
    # 4. the exact value before \approx / ≈ is the answer, the rounding only when it agrees
    "approx": {
        "equal": [
            ("\\frac{1}{3}", "x=1/3\\approx1.3"), ("\\frac{1}{3}", "x=\\frac{1}{3}≈0.33"),
            ("\\frac{1}{3}", "\\frac{1}{3} \\approx 0.333"), ("2\\sqrt{2}", "d = 2\\sqrt{2} \\approx 2.83"),
            ("\\frac{1}{3}, \\frac{2}{3}", "\\frac13 \\approx 0.33, \\frac23 \\approx 0.67"),
            ("0.33, 0.67", "\\frac13 \\approx 0.33, \\frac23 \\approx 0.67"),
            ("\\frac{1}{3}", "x = \\frac{1}{3} \\approx 0.3333 = 0.3333"),
        ],
        "not_equal": [
            ("1.3", "x=1/3\\approx1.3"), ("\\frac{1}{3}", "x=1/4\\approx0.33"), ("\\frac{1}{3}", "x \\approx 0.33"),
            ("\\frac{1}{3}, \\frac{2}{3}", "\\frac13 \\approx 0.33, \\frac13 \\approx 0.67"),
        ],
        "completions": [
            ("\\frac{1}{3}", "The probability is $x=1/3\\approx1.3$", 1.0),
            ("\\frac{1}{4}", "The probability is $x=1/3\\approx1.3$", 0.0),
        ],
    },
    # 5. intervals and unions against (compound) inequalities
    "intervals": {
        "equal": [
            ("x \\in [-2,7]", "-2 \\le x \\le 7"), ("-2 \\le x \\le 7", "x \\in [-2,7]"),
            ("[-2,7)", "-2 \\le x < 7"), ("(-\\infty,1)\\cup(2,\\infty)", "x<1 \\text{ or } x>2"),
            ("x<1 \\text{ or } x>2", "(-\\infty,1)\\cup(2,\\infty)"),
            ("x \\in (-\\infty,1)\\cup(2,\\infty)", "x < 1 or x > 2"),
            ("(-\\infty,-1] \\cup [3,\\infty)", "x \\le -1 \\text{ or } x \\ge 3"),
            ("[-2,7]", "x \\geq -2 \\text{ and } x \\leq 7"), ("(1,3)", "x > 1 and x < 3"),
            ("(-\\infty,1)\\cup(2,\\infty)", "x < 1 \\lor x > 2"), ("[-2, 7]", "7 \\geq x \\geq -2"),
        ],
        "not_equal": [
            ("x \\in [-2,7]", "-2 < x \\le 7"), ("x \\in [-2,7]", "-2 \\le x \\le 8"),
            ("[-2,7)", "-2 \\le x \\le 7"), ("(-\\infty,1)\\cup(2,\\infty)", "x<1 \\text{ or } x \\geq 2"),
            ("(-\\infty,1)\\cup(2,\\infty)", "x<1 \\text{ or } x>3"), ("(-\\infty,1)\\cup(2,\\infty)", "1 < x < 2"),
            ("[-2,7]", "x \\geq -2 \\text{ or } x \\leq 7"), ("(1,3)", "x > 1 and x \\leq 3"),
            ("(-\\infty,1)\\cup(2,\\infty)", "x > 1 \\text{ and } x < 2"),
        ],
        "completions": [
            ("x \\in [-2,7]", "So the solution set is $-2 \\le x \\le 7$.", 1.0),
        ],
    },
    # 6. labelled golds against bare values and tuples; ; and and/or lists; several boxes
    "labelled": {
        "equal": [
            ("\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", "\\frac{1}{\\sqrt6}"),
            ("\\frac{1}{\\sqrt{6}}", "\\dfrac{NO}{BO}=\\frac{\\sqrt{6}}{6}"),
            ("NO/BO = \\frac{1}{\\sqrt{6}}", "\\frac{\\sqrt6}{6}"), ("[ABC] = 12", "12"),
            ("p=5,q=2;p=7,q=2", "(5,2),(7,2)"), ("(5,2),(7,2)", "p=7,q=2;p=5,q=2"), ("(5,2),(7,2)", "(5,2);(7,2)"),
            ("(1,2)", "(1;2)"), ("2, 3", "2 and 3"), ("2 and 3", "2, 3"), ("2 \\text{ or } 3", "3, 2"),
            ("2, 3", "2 or 3"), ("y_1 = -2(x-1)^2+5", "-2x^2+4x+3"), ("y_1 = -2(x-1)^2+5", "y = -2x^2+4x+3"),
            ("-2x^2+4x+3", "y_1 = -2(x-1)^2+5"), ("(5,2),(7,2)", "p=5, q=2 \\text{ or } p=7, q=2"),
        ],
        "not_equal": [
            ("\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", "\\frac{1}{\\sqrt5}"), ("p=5,q=2;p=7,q=2", "(5,2),(7,3)"),
            ("p=5,q=2;p=7,q=2", "(2,5),(2,7)"), ("p=5,q=2;p=7,q=2", "5,2,7,2"), ("p=5,q=2;p=7,q=2", "(5,2)"),
            ("(1,2)", "(2;1)"), ("2, 3", "2 and 4"), ("y_1 = -2(x-1)^2+5", "-2x^2+4x+5"), ("\\frac{x}{2} = 3", "3"),
        ],
        "completions": [
            ("2, 3", "The roots are \\boxed{2} and \\boxed{3}.", 1.0),
            ("2 and 3", "The roots are \\boxed{2} and \\boxed{3}.", 1.0),
            ("2, 3", "So **\\boxed{2}** and **\\boxed{3}**", 1.0),
            ("2, 3", "So \\(\\boxed{2}\\) and \\(\\boxed{3}\\).", 1.0),
            ("2, 3", "The roots are \\boxed{2} and \\boxed{4}.", 0.0),
            ("(2,3)", "The roots are \\boxed{2} and \\boxed{3}.", 0.0),
            ("3", "The roots are \\boxed{2} and \\boxed{3}.", 1.0),
            ("p=5,q=2;p=7,q=2", "The pairs are \\boxed{(5,2)} and \\boxed{(7,2)}", 1.0),
            ("2, 3", "The answers are 2 and 3.", 1.0),
        ],
    },
    # 7. products of symbols indexed by expressions, factors in another order
    "indexed_products": {
        "equal": [
            ("F_{n-k-1} F_k", "F_k F_{n-k-1}"), ("F_{n-k-1}F_k + F_{n-k}F_{k+1}", "F_{k+1}F_{n-k} + F_kF_{n-k-1}"),
            ("F_{n-k-1} F_k", "F_k \\cdot F_{n-1-k}"), ("a_{n+1} a_n", "a_n a_{n+1}"),
            ("x_{i} y_{j} + 1", "1 + y_j x_i"), ("F_{k}F_{n-k}", "F_{n-k}F_{k}"), ("2F_{n+1}", "F_{n+1} + F_{1+n}"),
        ],
        "not_equal": [
            ("F_{n-k-1} F_k", "F_{n-k+1} F_k"), ("F_{n-k-1} F_k", "F_{n-k-1} + F_k"), ("a_{n+1} a_n", "a_{n-1} a_n"),
            ("F_{n-k-1}F_k", "F_{n-k-1}F_{k+1}"), ("F_{n-k-1} F_k", "F (n-k-1) F_k"),
        ],
        "completions": [],
    },
    # 8. a choice letter opening the completion (a letter inside the sentence never wins)
    "choice_letter": {
        "equal": [],
        "not_equal": [],
        "completions": [
            ("A", "A. Because B is not valid", 1.0), ("B", "A. Because B is not valid", 0.0),
            ("\\text{(C)}", "C) The other options fail since 2 > 1.", 1.0),
            ("D", "**D**. Only D satisfies the condition.", 1.0),
            ("(B)", "(B) is the only choice that works, since A gives 3.", 1.0),
            ("B", "We check each option.\n\nB. It is the only one with 3 sides.", 1.0), ("A", "B", 0.0),
            ("B", "B", 1.0), ("42", "A triangle has 3 sides. So 42", 1.0),
            ("\\text{(A)}", "A. Because B is not valid", 1.0), ("C", "The answer is (C). A and B fail.", 1.0),
            ("5", "A: the sum is 2 + 3 = 5", 1.0), ("B", "A. Let the side be 12.\nB. It is not 12.", 1.0),
        ],
    },
    # 9. (2026-12-05, evening) answers with no digit: the last math span is the answer
    "no_digit_span": {
        "equal": [],
        "not_equal": [],
        "completions": [
            ("\\text{B}", "So the winner is $B$", 1.0), ("\\text{B}", "So the winner is $C$", 0.0),
            ("\\text{even}", "Both terms are odd, so the sum is $even$", 1.0),
            ("$$g(t) = 2t$$", "$$g(t) = 2t$$", 1.0), ("$$g(t) = 2t$$", "$$g(t) = 3t$$", 0.0),
            ("$1/4$", "$\\frac14 $", 1.0), ("$\\sqrt{5}$", "$\\sqrt5$", 1.0),
        ],
    },
    # 10. LaTeX written without any $: the whole last line, not its last number
    "bare_latex_line": {
        "equal": [],
        "not_equal": [],
        "completions": [
            ("7/3", "\\frac{7}{3}", 1.0), ("-7/3", "-\\frac{7}{3}", 1.0), ("3", "\\frac{7}{3}", 0.0),
            ("10", "\\boxed{10", 1.0),  # an unclosed box is not a LaTeX line: its number stays
            ("5", "We get \\frac{10}{2}\nwhich is 5", 1.0),  # prose on the line: the number
        ],
    },
    # 11. "the final answer is ..." after the last box: an intermediate result was boxed
    "answer_after_box": {
        "equal": [],
        "not_equal": [],
        "completions": [
            ("312", "The interest is $\\boxed{12}$, so she has 300 + 12 dollars.\nThe final answer is $312$.", 1.0),
            ("12", "The interest is $\\boxed{12}$, so she has 300 + 12 dollars.\nThe final answer is $312$.", 0.0),
            ("12", "The final answer is $\\boxed{12}$.", 1.0), ("12", "The answer is 12, so \\boxed{12}", 1.0),
            ("12", "So $\\boxed{12}$.\nAnswer: the box holds the result.", 1.0),  # states no value
            ("12", "So $\\boxed{12}$. Is the answer is correct? Yes.", 1.0),  # a verdict
            ("7", "Final Answer: Tom finished the race 7 minutes later. I hope it is correct.", 1.0),
            ("7", "Final Answer: Tom ran 3 laps in 7 minutes.", 0.0),  # two numbers: no guess
        ],
    },
    # 12. a reference whose backslashes were escaped twice (\\frac for \frac)
    "doubled_backslashes": {
        "equal": [("$\\\\left(\\\\frac{2}{7},\\\\frac{3}{7}\\\\right)$", "\\left( \\frac{2}{7}, \\frac{3}{7} \\right)"),
                  ("\\\\sqrt{2}", "\\sqrt{2}")],
        "not_equal": [("$\\\\left(\\\\frac{2}{7},\\\\frac{3}{7}\\\\right)$", "\\left( \\frac{3}{7}, \\frac{2}{7} \\right)")],
        "completions": [],
    },
    # 13. a reference with several boxes: one list when at most two words separate them
    "gold_boxes": {
        "equal": [],
        "not_equal": [],
        "completions": [
            ("\\boxed{3} apples and \\boxed{5} pears", "$\\boxed{3,5}$", 1.0),
            ("$\\boxed{3}\\boxed{5}$", "$\\boxed{3, 5}$", 1.0),
            ("\\(\\boxed{4}\\) and \\(\\boxed{-1}\\).", "$\\boxed{-1,4}$", 1.0),
            ("\\boxed{3} is what we get first and then \\boxed{5}", "$\\boxed{3,5}$", 0.0),
            ("\\boxed{3} apples and \\boxed{5} pears", "$\\boxed{5}$", 0.0),
        ],
    },
}
for _family in FAMILIES.values():
    EQUAL += _family["equal"]
    NOT_EQUAL += _family["not_equal"]
    COMPLETIONS += _family["completions"]
